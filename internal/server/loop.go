package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/internal/abort"
	"github.com/tlspin/tlspin/internal/netsrc"
	"github.com/tlspin/tlspin/internal/ratelog"
)

// Handler serves one connection that a Loop accepted. ctx ends when the
// connection is closed by the loop (evicted, handshake timeout, end of the
// shutdown grace period); context.Cause(ctx) says why. The loop closes c
// when ServeConn returns.
type Handler interface {
	ServeConn(ctx context.Context, c *Conn)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, c *Conn)

// ServeConn calls f.
func (f HandlerFunc) ServeConn(ctx context.Context, c *Conn) { f(ctx, c) }

// Why the loop closed a connection: the cause of its context.
var (
	// ErrEvicted: the loop was full and this connection had been idle
	// the longest of those of the address holding the most.
	ErrEvicted = errors.New("server: closed to make room for a new connection (it had been idle the longest of those of the address holding the most)")
	// ErrHandshakeTimeout: the connection was not established within
	// the handshake timeout.
	ErrHandshakeTimeout = errors.New("server: handshake did not finish within the handshake timeout")
	// ErrShutdown: the shutdown grace period is over.
	ErrShutdown = errors.New("server: closed by the server: shutdown grace period over")
	// ErrOnceServed: with Once, another client was served first.
	ErrOnceServed = errors.New("server: already serving its one client (once)")
)

// Defaults for Limits' zero values.
const (
	DefaultMaxConns         = 256
	DefaultMaxHandshakes    = 64
	DefaultMaxConnsPerIP    = 32
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultGracePeriod      = 5 * time.Second
)

// Limits bound what a Loop holds. Zero values take the defaults.
//
// A connection is pending from accept until its handler calls Established
// (Conn.Handshake does on success); pending connections have their own,
// smaller budget so that clients that never finish a handshake cannot
// hold the slots of those that do. The loop never stalls a new client:
// when a budget is full it closes a connection to make room, a pending
// one first: the one idle the longest of the source (an address, an IPv6
// /64) holding the most pending connections, or with none pending, of the
// source holding the most connections. A source that keeps a budget
// full, from one address or from a few each under MaxConnsPerIP, closes
// its own connections, not those of other clients.
type Limits struct {
	// MaxConns bounds the connections held at once, pending or not.
	// When it is reached, a pending connection is closed for a new one
	// as for MaxHandshakes; with none pending, the connection idle the
	// longest of the source holding the most.
	MaxConns int
	// MaxHandshakes bounds the pending connections. When it is reached,
	// the pending connection idle the longest of the source holding the
	// most pending ones is closed for a new one.
	MaxHandshakes int
	// MaxConnsPerIP bounds the connections from one client IP address
	// (an IPv6 /64 counting as one); more are closed at once. Negative:
	// no bound.
	MaxConnsPerIP int
	// HandshakeTimeout bounds the time from accept to Established (from
	// when the handshake began, for a handler that held the timeout
	// meanwhile: Conn.HoldHandshakeTimeout).
	HandshakeTimeout time.Duration
	// GracePeriod is how long open connections may finish after the
	// context of Serve ends.
	GracePeriod time.Duration
	// Once: serve the first connection that is established, then stop.
	// Connections that never get established do not use it up.
	Once bool
}

func (l Limits) withDefaults() Limits {
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxHandshakes <= 0 {
		l.MaxHandshakes = DefaultMaxHandshakes
	}
	l.MaxHandshakes = min(l.MaxHandshakes, l.MaxConns)
	if l.MaxConnsPerIP == 0 {
		l.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if l.GracePeriod <= 0 {
		l.GracePeriod = DefaultGracePeriod
	}
	return l
}

// Stats counts what a loop did.
type Stats struct {
	// Open and Pending are the connections held now (Pending of them
	// not yet established).
	Open, Pending int
	// Accepted counts every connection accepted; Evicted those closed to
	// make room; TimedOut those not established in time; RefusedPerIP
	// those closed at once because their IP had too many.
	Accepted, Evicted, TimedOut, RefusedPerIP uint64
}

// Loop is the accept loop shared by every tlspin server: it accepts,
// admits each connection within Limits, runs the Handler on it, backs
// off on accept errors and drains on shutdown.
type Loop struct {
	h   Handler
	lim Limits
	log hclog.Logger

	mu       sync.Mutex
	conns    map[*Conn]struct{}
	perIP    map[netip.Addr]int
	pending  int
	onceUsed bool
	stats    Stats
	nextID   uint64
	// refusals bounds the warnings about connections refused for their
	// address, each source's apart: one that keeps trying must not hide
	// the refusals of another.
	refusals ratelog.Limiter
	// acceptErrors bounds the warnings about failed accepts: the first,
	// then one a second, counting those left out. The back-off starts
	// afresh after each successful accept, so out of file descriptors,
	// failing and succeeding in turn, it alone would let through one
	// every few milliseconds.
	acceptErrors ratelog.Limiter
	// stopAccepting ends the accept loop (set by Serve).
	stopAccepting context.CancelFunc
	wg            sync.WaitGroup
}

// NewLoop returns a loop that runs h on every connection, within lim.
func NewLoop(h Handler, lim Limits, log hclog.Logger) *Loop {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Loop{
		h:        h,
		lim:      lim.withDefaults(),
		log:      log,
		conns:    map[*Conn]struct{}{},
		perIP:    map[netip.Addr]int{},
		refusals: ratelog.Limiter{Burst: ratelog.PeerBurst, PerSource: ratelog.PeerPerSource},
	}
}

// Limits returns the limits in force, defaults filled in.
func (l *Loop) Limits() Limits { return l.lim }

// Stats returns the counters now.
func (l *Loop) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.Open, s.Pending = len(l.conns), l.pending
	return s
}

// Serve accepts connections on ln until ctx ends (or, with Once, until
// the one client was served). When ctx ends it stops accepting, lets open
// connections (handshakes included) finish within the grace period, then
// closes them. It closes ln. It returns nil on a normal stop.
func (l *Loop) Serve(ctx context.Context, ln net.Listener) error {
	// hard ends the connections themselves: at the end of the grace period.
	hard, kill := context.WithCancelCause(context.WithoutCancel(ctx))
	defer kill(nil)
	acceptCtx, stopAccepting := context.WithCancel(ctx)
	defer stopAccepting()
	l.mu.Lock()
	l.stopAccepting = stopAccepting
	l.mu.Unlock()
	stopClose := context.AfterFunc(acceptCtx, func() { ln.Close() })
	defer stopClose()

	acceptErr := l.accept(acceptCtx, hard, ln)
	ln.Close()

	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return acceptErr
	case <-ctx.Done():
	}
	if n := l.Stats().Open; n > 0 {
		l.log.Info("stopped accepting; letting open connections finish", "open", n, "grace", l.lim.GracePeriod)
	}
	grace := time.NewTimer(l.lim.GracePeriod)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		l.log.Warn("grace period over; closing connections", "open", l.Stats().Open)
		kill(ErrShutdown)
		l.closeAll()
		<-done
	}
	return acceptErr
}

// Accept-error backoff, as net/http does for EMFILE and friends.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// accept runs the accept loop until ctx ends or ln fails for good.
// Connections run on hard. Handlers still running after their connection
// was closed (a verifier call in flight) are bounded too: at most twice
// MaxConns goroutines, beyond which accepting waits.
func (l *Loop) accept(ctx, hard context.Context, ln net.Listener) error {
	running := make(chan struct{}, 2*l.lim.MaxConns)
	var delay time.Duration
	for {
		select {
		case running <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		raw, err := ln.Accept()
		if err != nil {
			<-running
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("server: accept on %s: %w", ln.Addr(), err)
			}
			// Out of file descriptors, a connection reset before accept:
			// wait and retry rather than stop serving everyone.
			delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
			// Bounded apart from the back-off, which a successful
			// accept starts afresh (acceptErrors).
			l.acceptErrors.Warn(l.log, "accept failed; retrying", "error", err, "retry_in", delay)
			timer := time.NewTimer(delay)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return nil
			}
			continue
		}
		delay = 0
		c := l.admit(hard, raw)
		if c == nil {
			<-running
			// Reset: a plaintext client (the proxy's client mode)
			// would take a FIN for an empty, complete stream.
			abort.Conn(raw)
			continue
		}
		l.wg.Go(func() {
			defer func() { <-running }()
			defer l.release(c)
			l.h.ServeConn(c.ctx, c)
		})
	}
}

// admit registers raw, making room if a budget is full. It returns nil if
// raw's IP address holds too many connections already.
func (l *Loop) admit(hard context.Context, raw net.Conn) *Conn {
	ip := remoteIP(raw)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Accepted++
	if l.lim.MaxConnsPerIP > 0 && ip.IsValid() && l.perIP[ip] >= l.lim.MaxConnsPerIP {
		l.stats.RefusedPerIP++
		l.logRefusalLocked(raw)
		return nil
	}
	if len(l.conns) >= l.lim.MaxConns {
		l.evictLocked(false)
	}
	if l.pending >= l.lim.MaxHandshakes {
		l.evictLocked(true)
	}
	l.nextID++
	c := &Conn{Conn: raw, id: l.nextID, ip: ip, loop: l, pending: true}
	c.touch()
	c.ctx, c.cancel = context.WithCancelCause(hard)
	l.conns[c] = struct{}{}
	if ip.IsValid() {
		l.perIP[ip]++
	}
	l.pending++
	l.startTimerLocked(c)
	return c
}

// startTimerLocked starts c's handshake timeout afresh. A timer that
// fires after it was stopped, which Stop cannot prevent, is of an older
// generation and expires nothing.
func (l *Loop) startTimerLocked(c *Conn) {
	c.timerGen++
	gen := c.timerGen
	c.timer = time.AfterFunc(l.lim.HandshakeTimeout, func() { l.expire(c, gen) })
}

// logRefusalLocked tells that raw was refused for its address: at warn
// level, at most three in a row then one a second for each source, and
// ten a second in all, counting the refusals not warned about since the
// last warning; at debug level otherwise.
func (l *Loop) logRefusalLocked(raw net.Conn) {
	kv := []any{"remote", raw.RemoteAddr().String(), "max_conns_per_ip", l.lim.MaxConnsPerIP}
	l.refusals.WarnFrom(l.log, netsrc.Of(raw.RemoteAddr()), "refused: too many connections from this address", kv...)
}

// evictLocked closes a pending connection to make room: the one idle the
// longest among those of the source (remoteIP: an address, an IPv6 /64)
// holding the most pending connections (those without an IP address, a
// unix socket's, count as one source); of sources holding as many, the
// one whose idlest connection has been idle the longest. Unless
// pendingOnly, if none is pending, it closes an established one by the
// same rule. A source that keeps a budget full, from one address or from
// a few each under MaxConnsPerIP, closes its own connections, not those
// of other clients.
func (l *Loop) evictLocked(pendingOnly bool) {
	victim := l.victimLocked(true)
	if victim == nil && !pendingOnly {
		victim = l.victimLocked(false)
	}
	if victim == nil {
		return
	}
	l.stats.Evicted++
	l.log.Debug("closing a connection to make room", "conn", victim.id, "remote", victim.RemoteAddr().String(), "pending", victim.pending, "idle", time.Since(time.Unix(0, victim.last.Load())).Round(time.Millisecond))
	l.dropLocked(victim, ErrEvicted)
}

// sourceTally is what victimLocked counts of one source.
type sourceTally struct {
	n      int
	idlest *Conn
	last   int64 // idlest's last activity
}

// victimLocked returns the connection idle the longest among the pending
// (or established) ones of the source holding the most of them, of those
// holding as many the one whose idlest was idle the longest; nil if no
// connection is pending (established).
func (l *Loop) victimLocked(pending bool) *Conn {
	tally := map[netip.Addr]sourceTally{}
	for c := range l.conns {
		if c.pending != pending {
			continue
		}
		s := tally[c.ip]
		s.n++
		if t := c.last.Load(); s.idlest == nil || t < s.last {
			s.idlest, s.last = c, t
		}
		tally[c.ip] = s
	}
	var most sourceTally
	for _, s := range tally {
		if s.n > most.n || s.n == most.n && s.last < most.last {
			most = s
		}
	}
	return most.idlest
}

// dropLocked removes c from the accounting, ends its context with cause
// and resets it (abort.Conn), if it is still held.
func (l *Loop) dropLocked(c *Conn, cause error) {
	if c.gone {
		return
	}
	c.gone = true
	delete(l.conns, c)
	if c.ip.IsValid() {
		if l.perIP[c.ip]--; l.perIP[c.ip] <= 0 {
			delete(l.perIP, c.ip)
		}
	}
	if c.pending {
		l.pending--
	}
	c.timer.Stop()
	if cause != nil {
		c.cancel(cause)
		// Cut, not ended: reset, so that a peer reading to the end of
		// its stream sees an error, not a FIN that a plaintext peer, or
		// crypto/tls at a record boundary, takes for a complete stream.
		// (Over a unix socket there is no reset: the peer sees a plain
		// close.)
		abort.Conn(c.Conn)
	}
}

// expire closes c if it is still pending at the handshake timeout of
// generation gen.
func (l *Loop) expire(c *Conn, gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.pending && !c.gone && c.timerGen == gen {
		l.stats.TimedOut++
		l.dropLocked(c, ErrHandshakeTimeout)
	}
}

// release is the end of c's handler.
func (l *Loop) release(c *Conn) {
	l.mu.Lock()
	l.dropLocked(c, nil)
	l.mu.Unlock()
	c.cancel(nil)
	c.Conn.Close()
}

// closeAll closes every connection still held.
func (l *Loop) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		l.dropLocked(c, ErrShutdown)
	}
}

// established moves c out of the pending budget. With Once, only the
// first connection established is served: later ones get false.
func (l *Loop) established(c *Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.gone {
		return false
	}
	if !c.pending {
		return true
	}
	if l.lim.Once {
		if l.onceUsed {
			l.dropLocked(c, ErrOnceServed)
			return false
		}
		l.onceUsed = true
		// Nobody else is served: stop accepting, let the others go.
		l.stopAccepting()
		for o := range l.conns {
			if o != c && o.pending {
				l.dropLocked(o, ErrOnceServed)
			}
		}
	}
	c.pending = false
	l.pending--
	c.timer.Stop()
	return true
}

// remoteIP is the source MaxConnsPerIP counts c against: its IP address,
// or for IPv6 its /64, which one host holds whole and may connect from
// any address of (netsrc.Of, as the warnings count sources).
func remoteIP(c net.Conn) netip.Addr {
	return netsrc.Of(c.RemoteAddr())
}

// Conn is a connection the loop holds. Reads and writes through it note
// activity, by which the loop picks whom to close when it is full.
type Conn struct {
	net.Conn
	id   uint64
	ip   netip.Addr
	loop *Loop
	last atomic.Int64 // unix nanoseconds of the last read or write that moved bytes
	ctx  context.Context
	// cancel ends ctx; the cause says why the loop closed the connection.
	cancel context.CancelCauseFunc
	// timer, timerGen, pending and gone are guarded by loop.mu.
	timer         *time.Timer
	timerGen      uint64
	pending, gone bool
}

// ID numbers connections in the order they were accepted, from 1.
func (c *Conn) ID() uint64 { return c.id }

// NetConn returns the accepted connection itself (for CloseWrite,
// SetLinger and the like).
func (c *Conn) NetConn() net.Conn { return c.Conn }

func (c *Conn) touch() { c.last.Store(time.Now().UnixNano()) }

// Read reads from the connection, noting activity.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

// Write writes to the connection, noting activity.
func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

// Established ends the connection's pending state (handlers that do not
// use Handshake call it once their peer is known). It returns false if the
// connection must not be served: it was closed meanwhile, or Once was
// used up by another one.
func (c *Conn) Established() bool { return c.loop.established(c) }

// HoldHandshakeTimeout stops c's handshake timeout until start is
// called, which starts it afresh: for a handler that has other work to do,
// bounded by a timeout of its own, before its handshake begins (the
// proxy's client mode dials its target, within the dial timeout, then
// does its TLS handshake with it).
func (c *Conn) HoldHandshakeTimeout() (start func()) {
	l := c.loop
	l.mu.Lock()
	c.timerGen++
	c.timer.Stop()
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if c.pending && !c.gone {
			l.startTimerLocked(c)
		}
	}
}

// Confirm ends what a connection's verification asked to do after the
// handshake (tlspin.Verifiers.Confirm): it records a TOFU pin if the
// handshake succeeded and forgets it if not. It is called once the
// handshake has returned, whatever the outcome.
type Confirm func(ctx context.Context, conn *tls.Conn) error

// Handshake runs the TLS server handshake on c with cfg (verification
// included, from cfg.VerifyConnection), bounded by the loop's handshake
// timeout and ctx, and marks c established on success. confirm, if not
// nil, is called then. On failure the error is a *HandshakeError saying
// which side refused.
func (c *Conn) Handshake(ctx context.Context, cfg *tls.Config, confirm Confirm) (*tls.Conn, error) {
	return c.HandshakeOver(ctx, c, cfg, confirm)
}

// HandshakeOver is Handshake with the TLS session over transport, a
// connection that wraps c (to batch its writes, say), instead of over c
// itself.
func (c *Conn) HandshakeOver(ctx context.Context, transport net.Conn, cfg *tls.Config, confirm Confirm) (*tls.Conn, error) {
	tc := tls.Server(transport, cfg)
	err := tc.HandshakeContext(ctx)
	// Before confirm's error may take its place: only crypto/tls's own
	// error says a client sent no certificate.
	noCert := isNoClientCert(err)
	// The one place where a decision's side effects happen on the server:
	// confirm records a client that completed the handshake, so proved its
	// key, and forgets one that did not.
	// A first use that could not be recorded (another process recorded
	// another key for the client meanwhile) is a rejection.
	if confirm != nil {
		if cerr := confirm(ctx, tc); cerr != nil && err == nil {
			err = cerr
		}
	}
	if err == nil && !c.Established() {
		err = context.Cause(ctx)
	}
	if err != nil {
		return tc, classify(err, context.Cause(ctx), tc.ConnectionState().Version == 0, noCert)
	}
	return tc, nil
}
