// Package recheck asks again about the peers of live connections when a
// verifier's policy changes, and revokes those no longer allowed.
//
// A TLS connection is verified once, at its handshake. A tunnel that stays
// open for days would otherwise outlive the removal of its peer's pin: the
// operator edits the allowlist, and the peer they meant to cut off keeps
// its connection. A Set holds the live connections; Changed, called on
// every policy change, has each of them checked again in the background,
// and those whose check fails are revoked (closed by their owner).
//
// Passes are coalesced and at most one starts per Set.Every: a verifier
// that announces a change for every new peer (tofu records each first
// use) costs one pass a second, not one per peer. In a pass, connections
// that ask the same question (Conn.Key) are asked about once.
package recheck

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultEvery is the default least time between the starts of two passes.
const DefaultEvery = time.Second

// Set is the live connections of one group of verifiers.
type Set struct {
	every time.Duration
	ctx   context.Context
	// wake has a value when a pass is due.
	wake chan struct{}
	// passes counts the passes ended; stopped is closed when the set's
	// goroutine returns (tests).
	passes  atomic.Uint64
	stopped chan struct{}

	mu sync.Mutex
	// gen counts the changes; changedAt is when the last one came.
	gen       uint64
	changedAt time.Time
	entries   map[*entry]struct{}
	// pruneAt is how many entries make Add drop those no longer alive.
	pruneAt int
}

// minPrune is the least pruneAt.
const minPrune = 64

// Conn is a live connection to watch (Add).
type Conn struct {
	// Since is when the decision that allowed its peer began: a change
	// after it has the connection checked in the next pass (the zero
	// time: at once).
	Since time.Time
	// Key, if not empty, names the question Check asks: the connections
	// of one key due in a pass are asked about once, and share the
	// answer (all the connections of a proxy client to its one target).
	Key string
	// Check asks again and returns nil to keep the connection.
	Check func(context.Context) error
	// Revoke is called, once, with Check's error; the connection is then
	// no longer watched. It must not block.
	Revoke func(error)
	// Alive, if not nil, reports whether the connection is still open,
	// for an owner that cannot tell the set when it closes: one no
	// longer alive is dropped, neither checked nor revoked.
	Alive func() bool
}

// entry is one live connection.
type entry struct {
	key    string
	check  func(context.Context) error
	revoke func(error)
	// alive, if set, reports whether the connection is still open.
	alive func() bool
	// seen is the generation the entry was last checked at, or was
	// current at when added; due says it must be checked whatever the
	// generation. Guarded by Set.mu.
	seen uint64
	due  bool
	gone bool
}

// New returns a set whose passes run until ctx ends, at most one starting
// every every (DefaultEvery if not positive).
func New(ctx context.Context, every time.Duration) *Set {
	if every <= 0 {
		every = DefaultEvery
	}
	s := &Set{every: every, ctx: ctx, wake: make(chan struct{}, 1), stopped: make(chan struct{}), entries: map[*entry]struct{}{}}
	go s.loop()
	return s
}

// Add watches c. Its Check and Revoke are called from the set's own
// goroutines: the checks of a pass run concurrently (up to parallel at
// once), the revokes one at a time. remove ends the watch and may be
// called more than once; a revoke already under way when it is called
// still runs. The set asks Alive of every connection whenever it has
// grown to twice what it held after the last such look, so that closed
// connections cost no more than the open ones.
func (s *Set) Add(c Conn) (remove func()) {
	e := &entry{key: c.Key, check: c.Check, revoke: c.Revoke, alive: c.Alive}
	s.mu.Lock()
	if len(s.entries) >= max(s.pruneAt, minPrune) {
		for o := range s.entries {
			if o.alive != nil && !o.alive() {
				o.gone = true
				delete(s.entries, o)
			}
		}
		s.pruneAt = 2 * len(s.entries)
	}
	e.seen = s.gen
	// Decided before the last change, or when is not known: the decision
	// may be one the change took back.
	due := c.Since.IsZero() || (s.gen > 0 && !s.changedAt.Before(c.Since))
	e.due = due
	s.entries[e] = struct{}{}
	s.mu.Unlock()
	if due {
		s.signal()
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		e.gone = true
		delete(s.entries, e)
	}
}

// Changed says a policy changed: every live connection is checked again.
func (s *Set) Changed() {
	s.mu.Lock()
	s.gen++
	s.changedAt = time.Now()
	s.mu.Unlock()
	s.signal()
}

// Len returns how many connections are watched.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Passes returns how many passes have ended: one that is under way when
// a revoke is called has ended once this is above what it was then.
func (s *Set) Passes() uint64 { return s.passes.Load() }

func (s *Set) signal() {
	select {
	case s.wake <- struct{}{}:
	default: // a pass is due already
	}
}

// loop runs a pass whenever one is due, at most one per s.every.
func (s *Set) loop() {
	defer close(s.stopped)
	var last time.Time
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		}
		if wait := time.Until(last.Add(s.every)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		last = time.Now()
		s.pass()
		s.passes.Add(1)
	}
}

// parallel bounds the checks of a pass that run at once. One after
// another, a verifier that hangs until the verify timeout on every
// question would have the last of N connections asked about after N
// timeouts: a pin removed would keep its connection for minutes. Bounded,
// so that a pass does not put thousands of questions to the plugins at
// once.
const parallel = 32

// pass checks every entry not checked since the last change, each
// question once: the entries of one key share its answer.
func (s *Set) pass() {
	s.mu.Lock()
	gen := s.gen
	var groups [][]*entry
	byKey := map[string]int{} // key: index in groups
	for e := range s.entries {
		if e.seen >= gen && !e.due {
			continue
		}
		if i, ok := byKey[e.key]; ok && e.key != "" {
			groups[i] = append(groups[i], e)
			continue
		}
		byKey[e.key] = len(groups)
		groups = append(groups, []*entry{e})
	}
	s.mu.Unlock()
	var (
		wg   sync.WaitGroup
		slot = make(chan struct{}, parallel)
		// one has the revokes called one at a time, as Add promises.
		one sync.Mutex
	)
	for _, g := range groups {
		select {
		case slot <- struct{}{}:
		case <-s.ctx.Done():
		}
		if s.ctx.Err() != nil {
			break // the verifiers are closing: nothing more is asked
		}
		wg.Go(func() {
			defer func() { <-slot }()
			s.checkGroup(g, gen, &one)
		})
	}
	wg.Wait()
}

// checkGroup asks the question of g's entries, due at generation gen,
// once, and revokes them all if the answer is an error.
func (s *Set) checkGroup(g []*entry, gen uint64, one *sync.Mutex) {
	open := g[:0]
	for _, e := range g {
		if e.alive != nil && !e.alive() {
			s.mu.Lock()
			e.gone = true
			delete(s.entries, e)
			s.mu.Unlock()
			continue
		}
		open = append(open, e)
	}
	if len(open) == 0 {
		return
	}
	err := open[0].check(s.ctx)
	if s.ctx.Err() != nil {
		return // the verifiers are closing: their failures say nothing
	}
	for _, e := range open {
		s.mu.Lock()
		if e.gone {
			s.mu.Unlock()
			continue
		}
		if err == nil {
			e.seen, e.due = gen, false
			s.mu.Unlock()
			continue
		}
		e.gone = true
		delete(s.entries, e)
		s.mu.Unlock()
		one.Lock()
		e.revoke(err)
		one.Unlock()
	}
}
