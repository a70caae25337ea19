// Package cache is the host's verdict cache. A verifier may say how long its
// verdict holds (verify.Verdict.CacheFor); the cache answers a repeat of the
// same question from memory instead of asking the plugin again.
//
// A question is keyed by the verifier it was put to, the SHA-256 of the peer
// chain (verify.Request.ChainDigest), the server name and the side; on the
// client side the dialled address is part of the key too, and on the server
// side the client's host (not its port), because a trust-on-first-use
// verdict depends on them. The key holds a digest of all this, not the
// texts: a client chooses its server name, of up to 64 KiB, before it
// proves any key. Errors are never cached, and a
// verdict that arrives after its verifier's policy changed (an allowlist
// reloaded, a TOFU pin recorded, a plugin restarted) is not stored. The cache
// is bounded: beyond its size the least recently used entry goes.
package cache

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/tlspin/tlspin/core/verify"
)

// DefaultMaxEntries bounds a cache made with MaxEntries 0.
const DefaultMaxEntries = 4096

// Notifier is implemented by deciders that report policy changes, such as
// *host.Plugin. Wrap subscribes to it so that a change drops the cached
// verdicts of that decider.
type Notifier interface {
	OnPolicyChange(func(verify.PolicyChange))
}

// Config tunes a Cache. Zero values get defaults.
type Config struct {
	// MaxEntries bounds the number of cached verdicts (default
	// DefaultMaxEntries).
	MaxEntries int
	// Now returns the current time (tests); nil means time.Now.
	Now func() time.Time
}

// Cache holds verdicts for any number of wrapped deciders. It is safe for
// concurrent use.
type Cache struct {
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[key]*list.Element
	lru     list.List // of *entry, most recently used first
	epochs  []uint64  // per member: bumped by every invalidation
	stats   Stats
}

// Stats counts what the cache did.
type Stats struct {
	Hits, Misses, Stores, Evictions, Invalidations uint64
	Entries                                        int
}

type key struct {
	member uint32
	side   verify.Side
	// peer is the SHA-256 of the chain, the server name and the remote
	// address (peerDigest), never the texts themselves: a client chooses
	// its server name (SNI), crypto/tls takes one of up to 64 KiB, and
	// the verdict is asked before the client proves it holds any key, so
	// that names kept as they came would let anyone fill MaxEntries
	// entries with 64 KiB each (256 MiB by default) for as long as the
	// verdicts hold.
	peer [sha256.Size]byte
	// noCommit keeps the verdicts of questions no Commit follows (an
	// open connection asked about again) apart from handshakes': a
	// verifier may answer a handshake on condition of a record.
	noCommit bool
}

type entry struct {
	k       key
	v       verify.Verdict
	expires time.Time
}

// New returns an empty cache.
func New(cfg Config) *Cache {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{max: cfg.MaxEntries, now: cfg.Now, entries: make(map[key]*list.Element)}
}

// Member is a decider seen through the cache. Its Verify answers from the
// cache when it can and asks the wrapped decider otherwise.
type Member struct {
	c    *Cache
	id   uint32
	name string
	next verify.Decider
}

var _ verify.Decider = (*Member)(nil)

// Wrap returns next seen through c, under name (for messages only: two
// members wrapping different deciders never share entries, even under the
// same name). If next is a Notifier, its policy changes invalidate the
// member's entries. A nil c returns next unwrapped.
func (c *Cache) Wrap(name string, next verify.Decider) verify.Decider {
	if c == nil {
		return next
	}
	c.mu.Lock()
	m := &Member{c: c, id: uint32(len(c.epochs)), name: name, next: next}
	c.epochs = append(c.epochs, 0)
	c.mu.Unlock()
	if n, ok := next.(Notifier); ok {
		n.OnPolicyChange(func(verify.PolicyChange) { m.Invalidate() })
	}
	return m
}

// Verify returns a cached verdict for req if one is still valid, and
// otherwise asks the wrapped decider, caching an answer that carries a
// CacheFor. The verdict returned is the caller's to keep.
func (m *Member) Verify(ctx context.Context, req *verify.Request) (*verify.Verdict, error) {
	if req == nil || len(req.PeerChain) == 0 {
		return m.next.Verify(ctx, req)
	}
	remote := req.RemoteAddr
	if req.Side != verify.ClientVerifiesServer {
		// A client's port changes with every connection; its host does not.
		if h, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
			remote = h
		}
	}
	k := key{member: m.id, side: req.Side, peer: peerDigest(req.ChainDigest(), req.ServerName, remote), noCommit: req.NoCommit}
	c := m.c
	c.mu.Lock()
	now := c.now()
	if el, ok := c.entries[k]; ok {
		e := el.Value.(*entry)
		if now.Before(e.expires) {
			c.lru.MoveToFront(el)
			c.stats.Hits++
			v := e.v
			c.mu.Unlock()
			return &v, nil
		}
		c.remove(el)
	}
	c.stats.Misses++
	epoch := c.epochs[m.id]
	c.mu.Unlock()

	v, err := m.next.Verify(ctx, req)
	// A verdict waiting for its commit holds only for the handshake it
	// was made for.
	if err != nil || v == nil || v.CacheFor <= 0 || v.Commit {
		return v, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// A policy change while the plugin was deciding makes this verdict
	// stale before it is stored: answer with it, but do not keep it.
	if c.epochs[m.id] != epoch {
		return v, nil
	}
	e := &entry{k: k, v: *v, expires: now.Add(v.CacheFor)}
	if el, ok := c.entries[k]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
	} else {
		c.entries[k] = c.lru.PushFront(e)
	}
	c.stats.Stores++
	for c.lru.Len() > c.max {
		c.remove(c.lru.Back())
		c.stats.Evictions++
	}
	return v, nil
}

// peerDigest is the SHA-256 of a chain's digest, a server name and a
// remote address, each text after its length, so that no two questions
// share one.
func peerDigest(chain [sha256.Size]byte, server, remote string) [sha256.Size]byte {
	h := sha256.New()
	h.Write(chain[:])
	for _, s := range []string{server, remote} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		io.WriteString(h, s)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Commit passes a commit on to the wrapped decider (see verify.Committer)
// and drops the member's cached verdicts, which the commit may change.
func (m *Member) Commit(ctx context.Context, req *verify.Request) (*verify.CommitResponse, error) {
	c, ok := m.next.(verify.Committer)
	if !ok {
		return &verify.CommitResponse{}, nil
	}
	defer m.Invalidate()
	return c.Commit(ctx, req)
}

// Invalidate drops every cached verdict of the member, and any verdict of
// it that is being decided right now.
func (m *Member) Invalidate() {
	c := m.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epochs[m.id]++
	c.stats.Invalidations++
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*entry).k.member == m.id {
			c.remove(el)
		}
		el = next
	}
}

// Purge drops every cached verdict of every member.
func (c *Cache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.epochs {
		c.epochs[i]++
	}
	c.stats.Invalidations++
	clear(c.entries)
	c.lru.Init()
}

// Stats returns the counters so far.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries = c.lru.Len()
	return s
}

func (c *Cache) remove(el *list.Element) {
	delete(c.entries, el.Value.(*entry).k)
	c.lru.Remove(el)
}

// String describes the member for logs.
func (m *Member) String() string { return fmt.Sprintf("cache(%s)", m.name) }
