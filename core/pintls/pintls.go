// Package pintls builds crypto/tls configurations whose peer decision is
// made by a verifier. Verification runs from tls.Config.VerifyConnection,
// which crypto/tls calls on every handshake, resumed sessions included
// (VerifyPeerCertificate is skipped on resumption). It is bounded by a
// timeout and fails closed: an error, a timeout or a missing verdict
// rejects the peer.
package pintls

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"reflect"
	"sync"
	"time"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/printable"
)

// ErrDropped is matched by the error of a PendingSet's Commit for a
// connection whose pending commit the set dropped before Commit came (it
// waited more than a minute, or among more than MaxPending): its peer
// was allowed on condition of a commit never made, so it must not be
// used.
var ErrDropped = errors.New("pintls: the pending commit was dropped")

// Required is what a verify.Committer may implement to say whether the
// allow it was set for holds only on condition of its commit. One whose
// peer another verifier allowed anyway (with require any) says no, and
// when its commit is dropped the connection is still served; a Committer
// without the method is taken as required, to fail closed.
type Required interface {
	Required() bool
}

// RejectError is returned from the handshake when the verifier rejects.
type RejectError struct {
	// Reason is the verifier's explanation, or the failure that made the
	// host reject (crash, timeout, garbage), as it came: a plugin's text,
	// which may quote the peer's.
	Reason string
	Err    error
}

// Error is Reason with control and format characters, and bytes that
// are not UTF-8, escaped (internal/printable): programs log it as it is.
func (e *RejectError) Error() string { return printable.Escape(e.Reason) }

// Unwrap returns verify.ErrRejected and the underlying failure, if any.
func (e *RejectError) Unwrap() []error {
	if e.Err != nil {
		return []error{verify.ErrRejected, e.Err}
	}
	return []error{verify.ErrRejected}
}

// Request builds the verifier request for a connection state.
func Request(cs tls.ConnectionState, side verify.Side, remote string) *verify.Request {
	chain := make([][]byte, len(cs.PeerCertificates))
	for i, c := range cs.PeerCertificates {
		chain[i] = c.Raw
	}
	return &verify.Request{
		PeerChain:   chain,
		ServerName:  cs.ServerName,
		Side:        side,
		RemoteAddr:  remote,
		TLSVersion:  cs.Version,
		CipherSuite: cs.CipherSuite,
		ALPN:        cs.NegotiatedProtocol,
		DidResume:   cs.DidResume,
	}
}

// Check asks d about a connection and returns nil only on an explicit allow.
func Check(ctx context.Context, d verify.Decider, req *verify.Request, timeout time.Duration) error {
	_, err := check(ctx, d, req, timeout)
	return err
}

// check is Check returning the allowing verdict.
func check(ctx context.Context, d verify.Decider, req *verify.Request, timeout time.Duration) (*verify.Verdict, error) {
	if len(req.PeerChain) == 0 {
		return nil, &RejectError{Reason: "peer sent no certificate"}
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	v, err := d.Verify(ctx, req)
	switch {
	case err != nil:
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, &RejectError{Reason: fmt.Sprintf("verifier gave no verdict within %s (failing closed)", timeout), Err: err}
		}
		return nil, &RejectError{Reason: fmt.Sprintf("verification failed (failing closed): %v", err), Err: err}
	case v == nil:
		return nil, &RejectError{Reason: "verifier returned no verdict (failing closed)"}
	case !v.Allow:
		reason := v.Reason
		if reason == "" {
			reason = "verifier rejected the peer without a reason"
		}
		return nil, &RejectError{Reason: reason}
	}
	return v, nil
}

// Pending is what the verification of one connection asked to commit once
// its handshake has succeeded (a TOFU pin to record). crypto/tls calls
// VerifyConnection before it checks the peer's signature, so a decision's
// side effects must wait: give every connection its own Pending
// (Options.Pending), call Commit after Handshake returned nil, and drop it
// otherwise. Without one, nothing could be committed: a configuration
// without a Pending rejects a peer allowed only on condition of its
// record (a TOFU verifier's first use), failing closed. The zero value is
// ready; a nil *Pending is valid and commits nothing.
type Pending struct {
	mu      sync.Mutex
	c       verify.Committer
	req     *verify.Request
	timeout time.Duration
	after   []func()
	onSet   func() // PendingSet's registration
	// out is the outcome of the Commit that took what was set; nil
	// until Commit is called (or Set again).
	out *outcome
}

// outcome is a Commit's: err, once done is closed.
type outcome struct {
	done chan struct{}
	err  error
}

// size is what p keeps of its peer: the request to commit, its chain
// and its texts. A client chooses its server name (SNI), which crypto/tls
// takes up to 64 KiB, as freely as its chain.
func (p *Pending) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.req == nil {
		return 0
	}
	return verify.RequestSize(p.req)
}

// committing reports whether p holds something to commit, not only what
// to run after the handshake.
func (p *Pending) committing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.c != nil
}

// required reports whether p holds a commit its peer's allow depends on
// (see Required).
func (p *Pending) required() bool {
	p.mu.Lock()
	c := p.c
	p.mu.Unlock()
	if c == nil {
		return false
	}
	if r, ok := c.(Required); ok {
		return r.Required()
	}
	return true
}

// After arranges for f to run at Commit, once the handshake has
// succeeded: a log line saying the peer was accepted, say.
func (p *Pending) After(f func()) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.after = append(p.after, f)
	p.mu.Unlock()
	if p.onSet != nil {
		p.onSet()
	}
}

// Set records that c asked to commit req once the handshake succeeds,
// bounded by timeout. The verification of a connection calls it.
func (p *Pending) Set(c verify.Committer, req *verify.Request, timeout time.Duration) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.c, p.req, p.timeout = c, req, timeout
	p.out = nil // a new verification: a new commit
	p.mu.Unlock()
	if p.onSet != nil {
		p.onSet()
	}
}

// Commit commits what the connection's verification asked for, once, and
// then runs what After arranged; it is a no-op when nothing is pending.
// Call it only after a successful handshake. A failed commit runs nothing
// of After: the peer was allowed on condition of it. Every later Commit
// (until Set is called again) returns the first one's outcome, waiting
// for it if it is under way: a caller that tries again after a failure
// must not be told the peer was committed.
func (p *Pending) Commit(ctx context.Context) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	if out := p.out; out != nil {
		p.mu.Unlock()
		select {
		case <-out.done:
			return out.err
		case <-ctx.Done():
			return fmt.Errorf("pintls: commit: waiting for the commit under way: %w", ctx.Err())
		}
	}
	out := &outcome{done: make(chan struct{})}
	c, req, timeout, after := p.c, p.req, p.timeout, p.after
	p.c, p.req, p.after, p.out = nil, nil, nil, out
	p.mu.Unlock()
	out.err = commit(ctx, c, req, timeout, after)
	close(out.done)
	return out.err
}

// commit is Commit's work: c's commit of req, if c is not nil, within
// timeout, and then after.
func commit(ctx context.Context, c verify.Committer, req *verify.Request, timeout time.Duration, after []func()) error {
	if c != nil {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		if _, err := c.Commit(ctx, req); err != nil {
			return fmt.Errorf("pintls: commit: %w", err)
		}
	}
	for _, f := range after {
		f()
	}
	return nil
}

// PendingSet keeps the Pending of each server connection, keyed by the
// net.Conn given to tls.Server: the verification of a connection puts
// what it asks for into For(conn), and once the handshake has returned the
// server calls Commit if it succeeded and Forget if it did not. Only
// connections whose verification put something in their Pending are kept.
//
// A client can make the server verify it and then fail its handshake
// (present another's certificate without its key) as often as it likes,
// and a server that never calls Forget (net/http's) leaves each such
// connection here: so entries last a minute at most, and the set keeps at
// most MaxPending of them and MaxPendingBytes of their peers' chains and
// names, dropping the oldest first. A dropped entry commits nothing, and its
// peer was allowed on condition of the commit (unless its Committer says
// otherwise, see Required): so the set remembers the connection, for an
// hour and MaxDropped connections at most, and its Commit fails with
// ErrDropped. The server must then close it unused. A commit that
// failed is remembered so too: every later Commit of the connection
// fails as the first did.
type PendingSet struct {
	// Expired, if set, is called with how many entries holding a commit
	// a minute passed without Commit or Forget, once they are dropped
	// (one waiting only to log its peer as accepted is not counted):
	// their peers were allowed on condition of a record that never came,
	// which means the server does not confirm its handshakes. It is called without the
	// set's lock held.
	Expired func(n int)

	// Now, if set, is the set's clock (tests); nil is time.Now.
	Now func() time.Time

	mu    sync.Mutex
	m     map[net.Conn]pendingEntry
	bytes int
	seq   uint64
	// gone are the connections whose Commit must fail, or answer as
	// their Pending's did (see goneEntry), by when: an element of goneq,
	// oldest first.
	gone  map[net.Conn]*list.Element
	goneq list.List
}

// goneEntry is a connection whose required commit was dropped (err), or
// whose Pending a Commit took (p), kept while that commit is under way
// and after it failed: a Commit called again must not find nothing to
// commit, and succeed.
type goneEntry struct {
	conn  net.Conn
	since time.Time
	err   error
	p     *Pending
}

type pendingEntry struct {
	p     *Pending
	since time.Time
	seq   uint64 // order of arrival: the smallest goes first
	size  int
}

const (
	// pendingTTL is how long a server connection's pending commit is kept
	// for a handshake to finish (the error of a dropped one says "a
	// minute").
	pendingTTL = time.Minute
	// MaxPending bounds the connections a PendingSet keeps.
	MaxPending = 1024
	// MaxPendingBytes bounds the requests a PendingSet keeps: their peer
	// chains' DER and their texts (verify.RequestSize).
	MaxPendingBytes = 16 << 20
	// droppedTTL is how long a PendingSet remembers a connection whose
	// required commit it dropped or failed, to fail its Commit.
	droppedTTL = time.Hour
	// MaxDropped bounds the connections a PendingSet remembers so; the
	// oldest are forgotten first.
	MaxDropped = 16384
)

// For returns the Pending of raw; it joins the set only if a verification
// puts something in it. A connection that cannot be a map key (a struct
// value holding a slice, say) gets nil, which commits nothing: a
// verification that needs a record then cannot allow its peer.
func (s *PendingSet) For(raw net.Conn) *Pending {
	if !keyable(raw) {
		return nil
	}
	p := &Pending{}
	p.onSet = func() {
		size := p.size()
		s.mu.Lock()
		if s.m == nil {
			s.m = map[net.Conn]pendingEntry{}
		}
		now := s.now()
		s.unforget(raw) // a record set again supersedes a dropped one
		e, ok := s.m[raw]
		if ok {
			s.drop(raw)
		} else {
			s.seq++
			e = pendingEntry{p: p, since: now, seq: s.seq}
		}
		e.p, e.size = p, size
		s.m[raw] = e
		s.bytes += size
		expired := s.prune(now)
		s.mu.Unlock()
		if expired > 0 && s.Expired != nil {
			s.Expired(expired)
		}
	}
	return p
}

// prune drops entries older than pendingTTL, then the oldest until the set
// is within its bounds. It returns how many of the older had something to
// commit.
func (s *PendingSet) prune(now time.Time) (expired int) {
	defer s.pruneGone(now)
	for len(s.m) > 0 {
		var oldest net.Conn
		var seq uint64
		for c, e := range s.m {
			if now.Sub(e.since) > pendingTTL {
				s.drop(c)
				if e.p.committing() {
					expired++
				}
				s.dropped(c, e.p, now, whyExpired)
				continue
			}
			if oldest == nil || e.seq < seq {
				oldest, seq = c, e.seq
			}
		}
		if oldest == nil || (len(s.m) <= MaxPending && s.bytes <= MaxPendingBytes) {
			return expired
		}
		p := s.m[oldest].p
		s.drop(oldest)
		s.dropped(oldest, p, now, whyOverflow)
	}
	return expired
}

// Why a required commit was dropped, as its Commit's error says.
var (
	whyExpired  = "it waited more than a minute for the end of its handshake"
	whyOverflow = fmt.Sprintf("more than %d connections, or %d MiB of their peers' certificates and names, were waiting for the end of their handshakes", MaxPending, MaxPendingBytes>>20)
)

// now is the set's clock: Now, or time.Now.
func (s *PendingSet) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// dropped remembers raw, whose entry p was just dropped, if p's peer was
// allowed on condition of its commit.
func (s *PendingSet) dropped(raw net.Conn, p *Pending, now time.Time, why string) {
	if !p.required() {
		return
	}
	s.remember(&goneEntry{conn: raw, since: now, err: fmt.Errorf("%w: %s", ErrDropped, why)})
}

// remember keeps g, in place of what was remembered of its connection.
func (s *PendingSet) remember(g *goneEntry) {
	if s.gone == nil {
		s.gone = map[net.Conn]*list.Element{}
	}
	s.unforget(g.conn)
	s.gone[g.conn] = s.goneq.PushBack(g)
	for s.goneq.Len() > MaxDropped {
		s.unforget(s.goneq.Front().Value.(*goneEntry).conn)
	}
}

// pruneGone forgets the connections remembered (dropped, or taken by a
// Commit) for more than an hour.
func (s *PendingSet) pruneGone(now time.Time) {
	for s.goneq.Len() > 0 {
		g := s.goneq.Front().Value.(*goneEntry)
		if now.Sub(g.since) <= droppedTTL {
			return
		}
		s.unforget(g.conn)
	}
}

// unforget forgets what was remembered of raw (remember).
func (s *PendingSet) unforget(raw net.Conn) {
	if el, ok := s.gone[raw]; ok {
		delete(s.gone, raw)
		s.goneq.Remove(el)
	}
}

func (s *PendingSet) drop(raw net.Conn) {
	s.bytes -= s.m[raw].size
	delete(s.m, raw)
}

// keyable reports whether raw can key the set's map: a struct value
// holding a slice cannot, and looking it up would panic; one holding a NaN
// equals nothing, itself included, so it could be stored but never found
// again (nor deleted).
func keyable(raw net.Conn) bool {
	if raw == nil || !reflect.ValueOf(raw).Comparable() {
		return false
	}
	same := raw
	return same == raw
}

// take returns what Commit of raw answers with: raw's Pending, taken
// from the set and remembered while it commits, or that of an earlier
// Commit still remembered, or the error of a dropped commit; nil and nil
// if there is nothing to commit.
func (s *PendingSet) take(raw net.Conn) (*Pending, error) {
	if s == nil || !keyable(raw) {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.pruneGone(now)
	if e, ok := s.m[raw]; ok {
		s.drop(raw)
		s.remember(&goneEntry{conn: raw, since: now, p: e.p})
		return e.p, nil
	}
	if el, ok := s.gone[raw]; ok {
		g := el.Value.(*goneEntry)
		return g.p, g.err
	}
	return nil, nil
}

// Commit commits raw's Pending, if any. Call it only once raw's
// handshake has succeeded. A nil set has nothing to commit. If the set
// dropped raw's commit, and raw's peer was allowed on condition of it,
// Commit fails with ErrDropped: close raw unused. Every later Commit of
// raw answers as the first did, failing if it failed.
func (s *PendingSet) Commit(ctx context.Context, raw net.Conn) error {
	p, err := s.take(raw)
	if err != nil || p == nil {
		return err
	}
	if err := p.Commit(ctx); err != nil {
		return err
	}
	// Committed: a later Commit has nothing to do.
	s.mu.Lock()
	if el, ok := s.gone[raw]; ok && el.Value.(*goneEntry).p == p {
		s.unforget(raw)
	}
	s.mu.Unlock()
	return nil
}

// Forget drops raw's Pending, if any, without committing it, and what
// was remembered of it: raw's handshake failed.
func (s *PendingSet) Forget(raw net.Conn) {
	if s == nil || !keyable(raw) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[raw]; ok {
		s.drop(raw)
	}
	s.unforget(raw)
}

// Dropped returns the number of connections remembered because their
// required commit was dropped (see ErrDropped), or failed, or is under
// way.
func (s *PendingSet) Dropped() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.goneq.Len()
}

// Len returns the number of connections waiting for Commit or Forget.
func (s *PendingSet) Len() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Options tune the configurations built here.
type Options struct {
	// Timeout bounds one verification (0: none beyond the decider's own).
	Timeout time.Duration
	// Context is the parent of every verification's context; nil means
	// context.Background (the handshake itself has no context to offer
	// VerifyConnection).
	Context context.Context
	// Pending receives what a client configuration's verification asks to
	// commit after the handshake (see Pending): one per connection. Nil
	// rejects a peer allowed only on condition of a record (tofu's first
	// use), as does a decider that is not a verify.Committer.
	Pending *Pending
}

// verifyConnection decides on a connection with d. name is the server
// name the client asked for: crypto/tls sends none for an IP address, so
// the connection state then carries none.
func (o Options) verifyConnection(d verify.Decider, side verify.Side, remote, name string, pending *Pending) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		ctx := o.Context
		if ctx == nil {
			ctx = context.Background()
		}
		req := Request(cs, side, remote)
		if req.ServerName == "" {
			req.ServerName = name
		}
		v, err := check(ctx, d, req, o.Timeout)
		if err != nil {
			return err
		}
		if !v.Commit {
			return nil
		}
		// An allow on condition of a record (tofu's first use) that
		// nothing will make is no allow: every new peer would be a first
		// use, for ever.
		c, ok := d.(verify.Committer)
		switch {
		case !ok:
			return &RejectError{Reason: fmt.Sprintf("the verifier allowed the peer only on condition of recording it after the handshake, but it cannot record (%T has no Commit): failing closed", d)}
		case pending == nil:
			return &RejectError{Reason: "the verifier allowed the peer only on condition of recording it after the handshake, and this configuration cannot record it (no Options.Pending): failing closed"}
		}
		pending.Set(c, req, o.Timeout)
		return nil
	}
}

// ClientConfig returns a client configuration that trusts exactly what d
// allows: certificate-authority checks are replaced by d, never skipped
// without it. clientCert, if not nil, is presented for mutual TLS.
func ClientConfig(d verify.Decider, serverName, remote string, clientCert *tls.Certificate, o Options) *tls.Config {
	c := &tls.Config{
		ServerName: serverName,
		MinVersion: tls.VersionTLS12,
		// The chain is checked by d in VerifyConnection instead.
		InsecureSkipVerify: true,
		VerifyConnection:   o.verifyConnection(d, verify.ClientVerifiesServer, remote, serverName, o.Pending),
	}
	if clientCert != nil {
		c.Certificates = []tls.Certificate{*clientCert}
	}
	return c
}

// ServerConfig returns a server configuration presenting cert. With a
// non-nil d, every client must present a certificate that d allows. It
// records nothing after a handshake, so a client d allows only on
// condition of recording it (tofu's first use) is rejected, failing
// closed: the tlspin package's Listen and Confirm record clients.
func ServerConfig(cert tls.Certificate, d verify.Decider, o Options) *tls.Config {
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// No TLS 1.3 session tickets: a client that closes without reading
		// them (the recipe's client does) makes the kernel reset the
		// connection, and the server loses what the client sent. tlspin's
		// own client does not resume sessions, so nothing is lost.
		SessionTicketsDisabled: true,
	}
	if d != nil {
		c.ClientAuth = tls.RequireAnyClientCert
		c.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			cc := c.Clone()
			cc.GetConfigForClient = nil
			addr := ""
			if hi.Conn != nil {
				addr = hi.Conn.RemoteAddr().String()
			}
			// A server configuration built here commits nothing, so it
			// rejects a first use: tlspin's servers hook verifiers in
			// through the tlspin package, which keeps a PendingSet per
			// connection.
			cc.VerifyConnection = o.verifyConnection(d, verify.ServerVerifiesClient, addr, "", nil)
			return cc, nil
		}
		// c verifies too, without the client's address: a program that
		// replaces or removes GetConfigForClient (to choose ALPN, say)
		// would otherwise have c require a client certificate and
		// accept any.
		c.VerifyConnection = o.verifyConnection(d, verify.ServerVerifiesClient, "", "", nil)
	}
	return c
}
