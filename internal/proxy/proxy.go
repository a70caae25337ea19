// Package proxy is tlspin's TLS tunnel in front of a plaintext program, in
// both directions, as a handler on internal/server's Loop (so limits, backoff,
// eviction and draining are the loop's):
//
//   - ServerMode accepts TLS, lets the TLS configuration's verifier decide
//     on the client (mutual TLS when it has one), and only then dials the
//     target in plaintext: a rejected client never reaches it.
//   - ClientMode accepts plaintext, dials the target over TLS and lets the
//     verifier decide on the server before a byte of the local client is
//     read: a rejected server means the local connection is closed at once.
//
// Bytes are copied both ways with pooled buffers; a half-close passes
// through (close_notify and a TCP FIN toward a TLS peer, a FIN toward a
// plaintext one), a reset propagates as a reset. A connection the proxy
// cuts itself (the loop's shutdown, eviction or refusal, a revocation, the
// idle timeout, a target unreachable or rejected) is reset (internal/abort),
// never closed cleanly: a peer reading to the end must see an error. A
// unix socket (a ListenUnix listener, a unix:/path target) has no reset:
// its peer sees a plain close, the end of the stream, whether the proxy
// cut the connection or passed on a reset.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/abort"
	"github.com/tlspin/tlspin/internal/netsrc"
	"github.com/tlspin/tlspin/internal/ratelog"
	"github.com/tlspin/tlspin/internal/server"
)

// serialized stamps events and hands them to f one at a time.
func serialized(f func(Event)) func(Event) {
	if f == nil {
		return func(Event) {}
	}
	var mu sync.Mutex
	return func(e Event) {
		e.Time = time.Now()
		mu.Lock()
		defer mu.Unlock()
		f(e)
	}
}

// Mode says which side of the proxy speaks TLS.
type Mode int

const (
	// ServerMode: TLS from clients, plaintext to the target.
	ServerMode Mode = iota
	// ClientMode: plaintext from local clients, TLS to the target.
	ClientMode
)

// Defaults for Config's zero values.
const (
	DefaultDialTimeout = 10 * time.Second
	DefaultMaxConns    = 1024
)

// Config configures a Proxy.
type Config struct {
	Mode Mode
	// TLS is the server configuration in ServerMode, the client one
	// (ServerName, VerifyConnection set) in ClientMode unless ClientTLS
	// is set.
	TLS *tls.Config
	// Confirm, in ServerMode, commits what a client's verification asked
	// to record, once its handshake succeeded (see server.Confirm).
	Confirm server.Confirm
	// ClientTLS, in ClientMode, returns the configuration of one
	// connection and the function that commits what its verification asked
	// to record, called with the connection once the handshake with the
	// target succeeded.
	ClientTLS func() (*tls.Config, server.Confirm)
	// Target is HOST:PORT or unix:/path.
	Target string
	// DialTimeout alone bounds dialling the target. Limits.HandshakeTimeout
	// bounds the TLS handshake: in ServerMode the one with the client, from
	// accept; in ClientMode the one with the target, from when the dial
	// succeeded.
	DialTimeout time.Duration
	// IdleTimeout closes a proxied connection with no bytes either way
	// for that long: none read, and none taken by a peer the proxy is
	// writing to (one that reads slowly is not idle); 0: never. The
	// direction still open is reset; a side whose stream had ended
	// cleanly is closed, so that it gets the rest of it.
	IdleTimeout time.Duration
	// Limits are the loop's; MaxConns defaults to DefaultMaxConns.
	Limits server.Limits
	Log    hclog.Logger
	// OnEvent, if set, receives every event. It is called from many
	// goroutines, one call at a time.
	OnEvent func(Event)
	// Metrics, if set, counts handshakes, connections and bytes.
	Metrics *Metrics
	// Recheck, if set, watches each accepted connection from when it
	// starts passing bytes until it ends: given the TLS connection's
	// state, the TLS peer's address as its verification was given it (the
	// client's in ServerMode, Target in ClientMode) and when that
	// verification began (before the handshake), it calls revoke when the
	// verifiers, asked again after a policy change, no longer allow the
	// peer, and the connection is closed (see tlspin.Verifiers.Watch).
	// stop ends the watch.
	Recheck server.Recheck
}

// EventKind names what happened.
type EventKind string

const (
	// EventAccepted: the peer passed verification and the target was
	// reached; bytes flow.
	EventAccepted EventKind = "accepted"
	// EventRejected: the handshake failed or the peer was rejected; the
	// target never saw this connection (ServerMode) or the local client
	// was closed (ClientMode).
	EventRejected EventKind = "rejected"
	// EventClosed ends an accepted connection, or one whose target could
	// not be reached. By is RejectedByUs when the verifiers revoked it
	// (Config.Recheck).
	EventClosed EventKind = "closed"
)

// Event is one thing that happened on a connection.
type Event struct {
	Kind   EventKind
	Time   time.Time
	Conn   uint64
	Remote string
	// By, on a rejection, says which side refused; on a close, that the
	// peer's TLS alert ended the connection (in TLS 1.3, how a server
	// refuses a client's certificate).
	By     server.Refusal
	Reason string
	// PeerSHA256 and PeerSPKI fingerprint the TLS peer's leaf, if any.
	PeerSHA256, PeerSPKI string
	// ToTarget and FromTarget count plaintext bytes, on close.
	ToTarget, FromTarget int64
	// Duration is the connection's lifetime, on close.
	Duration time.Duration
}

// Proxy serves one listener.
type Proxy struct {
	cfg  Config
	loop *server.Loop
	emit func(Event)
	// warns bounds the warnings about failed handshakes, one Limiter for
	// each side that ended them (server.Refusal: our verifiers rejected
	// the peer, the peer refused us, anything else), and probes the info
	// lines about clients that closed before their ClientHello: anyone
	// who can connect may cause any of them, and a flood of the cheap
	// ones (bytes that are not TLS) must not send the rejections an
	// operator watches for to debug level. unreachable bounds those
	// about a target that cannot be reached: while it is down, every
	// connection of a client that retries at once meets it. In
	// ServerMode each client's source has a share of the bounds on the
	// failed handshakes: one attacker who completes handshakes we reject
	// must not hide the rejections of other clients. (In ClientMode the
	// peer is the target, whichever local client connected.)
	warns               map[server.Refusal]*ratelog.Limiter
	probes, unreachable ratelog.Limiter
}

// New checks cfg and returns a proxy.
func New(cfg Config) (*Proxy, error) {
	if cfg.TLS == nil && (cfg.Mode != ClientMode || cfg.ClientTLS == nil) {
		return nil, errors.New("proxy: no TLS configuration")
	}
	if cfg.Mode != ServerMode && cfg.Mode != ClientMode {
		return nil, fmt.Errorf("proxy: unknown mode %d", cfg.Mode)
	}
	if _, _, err := splitTarget(cfg.Target); err != nil {
		return nil, err
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Limits.MaxConns <= 0 {
		cfg.Limits.MaxConns = DefaultMaxConns
	}
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	perSource := 0
	if cfg.Mode == ServerMode {
		perSource = ratelog.PeerPerSource
	}
	p := &Proxy{cfg: cfg, warns: map[server.Refusal]*ratelog.Limiter{}, probes: ratelog.Limiter{Burst: ratelog.PeerBurst, PerSource: perSource}, unreachable: ratelog.Limiter{Burst: ratelog.PeerBurst}}
	for _, by := range []server.Refusal{server.RejectedByUs, server.RefusedByPeer, server.HandshakeFailed} {
		p.warns[by] = &ratelog.Limiter{Burst: ratelog.PeerBurst, PerSource: perSource}
	}
	p.emit = serialized(cfg.OnEvent)
	h := server.HandlerFunc(p.serveTLS)
	if cfg.Mode == ClientMode {
		h = p.servePlain
	}
	p.loop = server.NewLoop(h, cfg.Limits, cfg.Log)
	if cfg.Metrics != nil {
		cfg.Metrics.watch(p.loop)
	}
	return p, nil
}

// Serve accepts on ln until ctx ends, then drains within the grace
// period (see server.Loop.Serve). It closes ln.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	return p.loop.Serve(ctx, ln)
}

// Stats returns the loop's counters.
func (p *Proxy) Stats() server.Stats { return p.loop.Stats() }

// CheckTarget returns the error New would give for the target t (HOST:PORT
// with a port that can be dialled, or unix:/path), or nil: for a command
// to check its flags before anything starts.
func CheckTarget(t string) error {
	_, _, err := splitTarget(t)
	return err
}

// splitTarget parses HOST:PORT or unix:/path into a network and address.
func splitTarget(t string) (network, addr string, err error) {
	if path, ok := strings.CutPrefix(t, "unix:"); ok {
		if path == "" {
			return "", "", fmt.Errorf("proxy: target %q: want unix:/path", t)
		}
		return "unix", path, nil
	}
	_, port, err := net.SplitHostPort(t)
	if err != nil {
		return "", "", fmt.Errorf("proxy: target %q: want HOST:PORT or unix:/path", t)
	}
	// A port that cannot be dialled (none, 0, out of range, an unknown
	// service) is refused now, not at every connection.
	if n, err := net.LookupPort("tcp", port); err != nil || n == 0 {
		return "", "", fmt.Errorf("proxy: target %q: port %q: want 1 to 65535 or a service name", t, port)
	}
	return "tcp", t, nil
}

// dialTarget connects to the target in plaintext.
func (p *Proxy) dialTarget(ctx context.Context) (net.Conn, error) {
	network, addr, _ := splitTarget(p.cfg.Target)
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	// The connection's own context has no deadline, so a deadline
	// exceeded (the context's, or the socket's that the dialer set from
	// it) is the dial timeout's.
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, fmt.Errorf("proxy: dial target %q: not connected within the dial timeout (%s): %w", p.cfg.Target, p.cfg.DialTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("proxy: dial target %q: %w", p.cfg.Target, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return c, nil
}

// serveTLS is ServerMode: handshake (verification included) first, then
// the target.
func (p *Proxy) serveTLS(ctx context.Context, c *server.Conn) {
	start := time.Now()
	if tc, ok := c.NetConn().(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	ev := Event{Conn: c.ID(), Remote: c.RemoteAddr().String()}
	tc, err := c.HandshakeOver(ctx, &batchConn{Conn: c}, p.cfg.TLS, p.cfg.Confirm)
	ev.PeerSHA256, ev.PeerSPKI = server.Fingerprints(tc.ConnectionState().PeerCertificates)
	if err != nil {
		p.rejected(ev, netsrc.Of(c.RemoteAddr()), err)
		return
	}
	p.cfg.Metrics.handshake(string(Accepted))
	target, err := p.dialTarget(ctx)
	if err != nil {
		// The client's handshake succeeded: a close would end its stream
		// cleanly, before a byte, as if the target had nothing to say.
		abort.Conn(tc)
		ev.Kind, ev.Reason, ev.Duration = EventClosed, err.Error(), time.Since(start)
		p.unreachable.Warn(p.cfg.Log, "target unreachable; client closed", "conn", ev.Conn, "remote", ev.Remote, "error", err)
		p.emit(ev)
		return
	}
	p.run(ctx, ev, start, tc.ConnectionState(), tc, target)
}

// servePlain is ClientMode: reach the target over TLS and let the
// verifier decide on it before anything of the local client is read.
func (p *Proxy) servePlain(ctx context.Context, c *server.Conn) {
	start := time.Now()
	ev := Event{Conn: c.ID(), Remote: c.RemoteAddr().String()}
	// The handshake timeout is the TLS handshake's, with the target: it
	// starts once the dial, which the dial timeout bounds, succeeded.
	startHandshakeTimeout := c.HoldHandshakeTimeout()
	raw, err := p.dialTarget(ctx)
	if err != nil {
		// The local client, plaintext, would take a FIN for an empty,
		// complete stream: it is reset, here and on a rejection.
		abort.Conn(c)
		msg := "target unreachable; local client reset"
		if cause := context.Cause(ctx); cause != nil {
			// Not the target's doing: the loop closed the connection
			// (shutdown, a limit) while dialling.
			msg, err = "local client reset while the target was being dialled", cause
		}
		ev.Kind, ev.By, ev.Reason = EventRejected, server.HandshakeFailed, err.Error()
		p.cfg.Metrics.handshake(string(server.HandshakeFailed))
		p.unreachable.Warn(p.cfg.Log, msg, "conn", ev.Conn, "remote", ev.Remote, "error", err)
		p.emit(ev)
		return
	}
	startHandshakeTimeout()
	cfg, confirm := p.cfg.TLS, server.Confirm(func(context.Context, *tls.Conn) error { return nil })
	if p.cfg.ClientTLS != nil {
		cfg, confirm = p.cfg.ClientTLS()
	}
	tc := tls.Client(&batchConn{Conn: raw}, cfg)
	err = tc.HandshakeContext(ctx)
	ev.PeerSHA256, ev.PeerSPKI = server.Fingerprints(tc.ConnectionState().PeerCertificates)
	if err == nil && !c.Established() {
		err = context.Cause(ctx)
	}
	if err != nil {
		raw.Close()
		abort.Conn(c)
		p.rejected(ev, netip.Addr{}, clientHandshakeError(err, context.Cause(ctx)))
		return
	}
	// The handshake succeeded and the server proved its key: the one
	// place where a decision's side effects happen in ClientMode. A first
	// use that could not be recorded (another process recorded another
	// key for the target meanwhile) is a rejection.
	if err := confirm(ctx, tc); err != nil {
		tc.Close()
		raw.Close()
		abort.Conn(c)
		p.rejected(ev, netip.Addr{}, clientHandshakeError(err, nil))
		return
	}
	p.cfg.Metrics.handshake(string(Accepted))
	p.run(ctx, ev, start, tc.ConnectionState(), c, tc)
}

// Accepted is the outcome label of a handshake that passed.
const Accepted server.Refusal = "accepted"

// NoCertificate is the outcome label of a client that sent no certificate
// to a proxy that requires one.
const NoCertificate server.Refusal = "no_certificate"

// rejected reports a failed handshake; src is the source that caused it
// (netsrc.Of the client's address), the zero Addr when it is the target.
func (p *Proxy) rejected(ev Event, src netip.Addr, err error) {
	var he *server.HandshakeError
	if !errors.As(err, &he) {
		he = &server.HandshakeError{By: server.HandshakeFailed, Reason: err.Error(), Err: err}
	}
	ev.Kind, ev.By, ev.Reason = EventRejected, he.By, he.Reason
	outcome := string(he.By)
	if errors.Is(err, server.ErrNoCertificate) {
		outcome = string(NoCertificate) // no verifier was asked
	}
	p.cfg.Metrics.handshake(outcome)
	kv := []any{"conn", ev.Conn, "remote", ev.Remote, "by", he.By, "reason", he.Reason}
	if ev.PeerSHA256 != "" {
		kv = append(kv, "peer_sha256", ev.PeerSHA256, "peer_spki", ev.PeerSPKI)
	}
	if errors.Is(err, server.ErrClosedEarly) {
		// A TCP health check or a port scan: every few seconds from each
		// load balancer, and no news.
		p.probes.LogFrom(p.cfg.Log, hclog.Info, src, "client closed before its ClientHello was answered; closed", kv...)
	} else {
		l := p.warns[he.By]
		if l == nil {
			l = p.warns[server.HandshakeFailed]
		}
		l.WarnFrom(p.cfg.Log, src, "handshake failed; closed, nothing passed through", kv...)
	}
	p.emit(ev)
}

// clientHandshakeError classifies a failed handshake with the target.
func clientHandshakeError(err, cause error) *server.HandshakeError {
	var op *net.OpError
	var re tls.RecordHeaderError
	he := &server.HandshakeError{By: server.HandshakeFailed, Reason: "handshake with the target: " + err.Error(), Err: err}
	switch {
	case cause != nil:
		he.Reason = cause.Error()
	case errors.As(err, &re):
		he.Reason = "the target does not speak TLS"
	case errors.Is(err, verify.ErrRejected):
		he.By, he.Reason = server.RejectedByUs, "we rejected the target: "+err.Error()
	case errors.As(err, &op) && op.Op == "remote error":
		he.By, he.Reason = server.RefusedByPeer, "the target refused the handshake (alert: "+op.Err.Error()+"); does it trust our client certificate?"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		he.Reason = "the target closed the connection during the handshake: a limit of its own? (a tlspin proxy server sees every client of this proxy from one address: raise its --max-conns-per-ip)"
	}
	return he
}

// run pipes an accepted connection, whose TLS side's state is cs and
// whose verification began at start, and reports it.
func (p *Proxy) run(ctx context.Context, ev Event, start time.Time, cs tls.ConnectionState, client, target net.Conn) {
	addr := ev.Remote
	if p.cfg.Mode == ClientMode {
		addr = p.cfg.Target
	}
	// A revocation ends ctx, and pipe closes both sides.
	ctx, unwatch := p.cfg.Recheck.Watch(ctx, cs, addr, start, nil)
	defer unwatch()
	ev.Kind = EventAccepted
	kv := []any{"conn", ev.Conn, "remote", ev.Remote}
	if ev.PeerSPKI != "" { // no client certificate: nothing verified it
		kv = append(kv, "peer_spki", ev.PeerSPKI)
	}
	p.cfg.Log.Info("accepted", kv...)
	p.emit(ev)
	m := p.cfg.Metrics
	m.opened()
	res := pipe(ctx, client, target, p.cfg.IdleTimeout, m)
	m.closed()
	ev.Kind, ev.ToTarget, ev.FromTarget, ev.Duration = EventClosed, res.toTarget, res.fromTarget, time.Since(start)
	if res.err != nil {
		ev.Reason = res.err.Error()
	}
	if cause := context.Cause(ctx); cause != nil {
		ev.Reason = cause.Error()
	}
	kv = []any{"conn", ev.Conn, "to_target", ev.ToTarget, "from_target", ev.FromTarget, "duration", ev.Duration.Round(time.Millisecond)}
	if ev.Reason != "" { // both sides closed in order
		kv = append(kv, "reason", ev.Reason)
	}
	var op *net.OpError
	var revoked *server.RevokedError
	if errors.As(context.Cause(ctx), &revoked) {
		ev.By = server.RejectedByUs
		m.revocation()
		if ev.PeerSPKI != "" {
			kv = append(kv, "peer_spki", ev.PeerSPKI)
		}
		p.cfg.Log.Warn("closed: asked again after a policy change, the verifiers no longer allow the peer", kv...)
	} else if p.cfg.Mode == ClientMode && errors.As(res.err, &op) && op.Op == "remote error" {
		// In TLS 1.3 the target judges our certificate after our side of
		// the handshake is done: its refusal comes as an alert here.
		ev.By = server.RefusedByPeer
		p.cfg.Log.Warn("closed by the target's TLS alert; if it says bad certificate, the target refuses our client certificate (--cert)", kv...)
	} else {
		p.cfg.Log.Info("closed", kv...)
	}
	p.emit(ev)
}
