package tlspin

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/client"
	"github.com/tlspin/tlspin/internal/netsrc"
	"github.com/tlspin/tlspin/internal/printable"
	"github.com/tlspin/tlspin/internal/ratelog"
)

// handshake completes conn's handshake. It is the one place where a
// connection made by Dial or Listen becomes trusted: side effects of a
// decision (a first-contact record of tofu) happen right after it
// succeeds, never before; confirm commits them. An allow that held only
// if its record was made does not hold when the record fails (another
// process recorded another key for the peer meanwhile): that is the
// connection's rejection. The handshake and the record together take at
// most the handshake timeout: hctx, ctx bounded by handshakeContext,
// which the verification must be given too.
func (v *Verifiers) handshake(ctx, hctx context.Context, conn *tls.Conn, confirm func(context.Context) error) error {
	err := conn.HandshakeContext(hctx)
	if err == nil {
		err = confirm(hctx)
	}
	if err != nil && hctx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("handshake did not finish within %s (WithHandshakeTimeout): %w", v.hsTimeout, err)
	}
	return err
}

// handshakeContext is ctx bounded by the handshake timeout: a handshake
// of Dial or Listen ends with it, and so must its verification, or a
// verifier that hangs would hold the handshake until the verify timeout.
func (v *Verifiers) handshakeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, v.hsTimeout)
}

// Dial connects to addr over network ("tcp", "tcp4", "tcp6"; any other is
// an error before anything is sent) and completes a TLS handshake in which
// the verifiers decide on the server. The server name sent is addr's host,
// unless it is an IP address; the verifiers also see addr itself, so tofu
// records the server as HOST:PORT, exactly as the tlspin command does. The
// connection returned is a *tls.Conn.
//
// ctx bounds the connect, the handshake, the verification and the record;
// the handshake (with the verification and the record) also ends after
// WithHandshakeTimeout (default DefaultHandshakeTimeout), so that a server
// that stalls it cannot hold Dial when ctx never ends.
// A server the verifiers reject fails Dial with an error that wraps the
// *RejectionError (errors.As; ErrRejected or ErrVerifierFailed); after
// Close, Dial fails at once with ErrClosed.
//
// The connection is watched while it is open, unless WithoutRecheck: when
// a verifier's policy changes (an allowlist edited), the verifiers are
// asked again about the server, and one they no longer allow has the
// connection closed, with a warning (see Watch).
//
// To a server that asks for a client certificate (mutual TLS), Dial
// presents the one given WithClientCertificate, once the verifiers have
// allowed the server; without it, none.
//
// Its signature fits net/http: http.Transport{DialTLSContext: v.Dial}.
func (v *Verifiers) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := v.unstarted(); err != nil {
		return nil, fmt.Errorf("tlspin: dial %s: %w", addr, err)
	}
	if v.closed() {
		return nil, fmt.Errorf("tlspin: dial %s: %w", addr, ErrClosed)
	}
	if err := tcpOnly(network); err != nil {
		return nil, fmt.Errorf("tlspin: dial %s: %w", addr, err)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("tlspin: dial %q: want HOST:PORT: %w", addr, badArgument{err})
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("tlspin: dial %s: %w", addr, err)
	}
	var pending pintls.Pending
	sn, since := client.ServerName(addr, ""), time.Now()
	cfg := &tls.Config{}
	if cert := v.clientCert; cert != nil {
		// Whatever CAs the server's request names, as tlspin send does:
		// crypto/tls would send Certificates only to a server naming
		// one that issued it, and a server that pins its clients often
		// names others, or none. The verifiers decide before it is sent.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	hctx, cancel := v.handshakeContext(ctx)
	defer cancel()
	conn := tls.Client(raw, v.hookClient(hctx, cfg, sn, addr, &pending))
	if err := v.handshake(ctx, hctx, conn, func(ctx context.Context) error { return committed(pending.Commit(ctx)) }); err != nil {
		raw.Close()
		return nil, fmt.Errorf("tlspin: handshake with %s: %w", addr, err)
	}
	v.watchConn(conn, raw, false, addr, sn, since)
	return conn, nil
}

// DefaultHandshakeTimeout bounds a handshake of Dial, or of a connection
// accepted by a Listen listener, unless WithHandshakeTimeout says
// otherwise.
const DefaultHandshakeTimeout = 10 * time.Second

// Listen listens on addr over network ("tcp", "tcp4", "tcp6"; any other,
// a unix socket included, is an error before anything listens) and returns
// a listener whose Accept returns only connections, each a *tls.Conn,
// whose handshake completed within WithHandshakeTimeout (default
// DefaultHandshakeTimeout) and whose
// client presented a certificate the verifiers allow. Handshakes run
// concurrently, so a slow client delays no other, and at most
// WithMaxHandshakes at once: when a new client arrives with the bound
// reached, the handshake that began first among those of the address
// (for IPv6, the /64) holding the most is closed, and logged, to make
// room. A failed or rejected one is closed and logged at warn level with
// the client's address and the reason: at most ten a second, and as many
// for clients the verifiers rejected, each time at most three in a row
// then one a second from one address (for IPv6, the /64); the rest at
// debug level, counted in the
// next warning of their kind. A client that closes before it begins a
// handshake (a port scanner, a TCP health check) is logged at debug level
// only. It fits http.Server.Serve and gRPC: it selects h2 or
// http/1.1 by ALPN when the client offers them. An addr without a port
// (":0" or "127.0.0.1:0" lets the system choose one), and a cert without
// a certificate or without its private key, are errors matching
// ErrBadArgument, before anything listens.
//
// An accept error other than the listener being closed (out of file
// descriptors, a connection aborted before it was accepted) is logged at
// warn level and retried with a growing delay (up to a second), as
// net/http does: Accept never returns it and the listener keeps serving
// once the cause goes away. Accept returns an error only once the
// listener is closed, by Close, underneath it, or by v's Close (the error
// then matches ErrClosed and net.ErrClosed, so that http.Serve returns),
// and from then on always. Closing the listener ends the handshakes in
// progress; the connections it returned stay open.
//
// A connection's NetConn is not the TCP connection but a wrapper that
// counts what its handshake reads: it is a syscall.Conn of the socket,
// and its own NetConn method returns the TCP connection.
//
// Each connection returned is watched while it is open, unless
// WithoutRecheck: when a verifier's policy changes (an allowlist edited),
// the verifiers are asked again about the client, and one they no longer
// allow has its connection closed, with a warning (see Watch).
func (v *Verifiers) Listen(network, addr string, cert tls.Certificate) (net.Listener, error) {
	if err := v.unstarted(); err != nil {
		return nil, fmt.Errorf("tlspin: listen %s: %w", addr, err)
	}
	if v.closed() {
		return nil, fmt.Errorf("tlspin: listen %s: %w", addr, ErrClosed)
	}
	if err := tcpOnly(network); err != nil {
		return nil, fmt.Errorf("tlspin: listen %s: %w", addr, err)
	}
	// net.Listen takes "" for every interface on a random port, and
	// fails a host alone with a network error: neither is what the
	// caller meant.
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("tlspin: listen %q: want HOST:PORT (port 0 for any): %w", addr, badArgument{err})
	}
	if err := presentable(cert); err != nil {
		return nil, fmt.Errorf("tlspin: listen %s: %w", addr, badArgument{err})
	}
	inner, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("tlspin: listen: %w", err)
	}
	return v.listen(inner, cert), nil
}

// tcpOnly refuses a network other than TCP's. TLS needs a stream, and
// the verifiers need the peer's address: a unix socket's clients all
// have the same, empty one, so tofu would record them all as one client
// and Listen's per-address bounds would take them for one host.
func tcpOnly(network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return nil
	}
	return badArgument{fmt.Errorf("network %q: want tcp, tcp4 or tcp6", network)}
}

// presentable says why cert cannot be presented to a client, or nil:
// Listen would otherwise listen and fail every handshake.
func presentable(cert tls.Certificate) error {
	switch {
	case len(cert.Certificate) == 0:
		return errors.New("no certificate to present (load one with tls.LoadX509KeyPair)")
	case cert.PrivateKey == nil:
		return errors.New("the certificate has no private key")
	}
	return nil
}

// listenProtos are the ALPN protocols a Listen listener selects from a
// client's offer: h2, which gRPC's TLS credentials require of a server
// and with which net/http speaks HTTP/2, then http/1.1. A client that
// offers none of them (openssl s_client, tlspin send, PostgreSQL's
// "postgresql") gets no ALPN at all: crypto/tls fails the handshake of a
// client that offers protocols and shares none with the server's.
var listenProtos = []string{"h2", "http/1.1"}

// listenConfig is what a Listen listener hooks: it presents cert, and
// selects from listenProtos only for a client that offers one of them.
func listenConfig(cert tls.Certificate) *tls.Config {
	alpn := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: listenProtos, MinVersion: tls.VersionTLS12}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			for _, p := range hi.SupportedProtos {
				if slices.Contains(listenProtos, p) {
					return alpn, nil
				}
			}
			return nil, nil
		},
	}
}

// listen serves verified TLS connections accepted from inner.
func (v *Verifiers) listen(inner net.Listener, cert tls.Certificate) *listener {
	l := &listener{
		Listener: inner,
		v:        v,
		cfg:      v.HookServerConfig(listenConfig(cert)),
		conns:    make(chan net.Conn),
		done:     make(chan struct{}),
		warns:    ratelog.Limiter{Burst: ratelog.PeerBurst, PerSource: ratelog.PeerPerSource},
		rejects:  ratelog.Limiter{Burst: ratelog.PeerBurst, PerSource: ratelog.PeerPerSource},
		inHand:   map[net.Conn]*list.Element{},
		bySrc:    map[netip.Addr]*list.List{},
	}
	// The handshakes in progress end with the listener, or with v.
	l.ctx, l.cancel = context.WithCancel(v.ctx)
	// Without verifiers, every handshake would fail: stop listening. If
	// v is closed already, the func runs at once in a goroutine of its
	// own: l.mu keeps it from closing l before stopFollowing is stored.
	l.mu.Lock()
	l.stopFollowing = context.AfterFunc(v.ctx, func() {
		l.mu.Lock()
		if l.err == nil {
			l.err = fmt.Errorf("tlspin: listener on %s: %w (%w)", inner.Addr(), ErrClosed, net.ErrClosed)
		}
		l.mu.Unlock()
		l.Close()
	})
	l.mu.Unlock()
	go l.acceptLoop()
	return l
}

type listener struct {
	net.Listener
	v     *Verifiers
	cfg   *tls.Config
	conns chan net.Conn
	done  chan struct{}
	// ctx bounds the handshakes: it ends at Close, when no connection
	// can be accepted any more, and at v's Close.
	ctx    context.Context
	cancel context.CancelFunc

	mu   sync.Mutex
	err  error // why acceptLoop stopped, or v was closed
	once sync.Once
	// stopFollowing stops closing the listener at v's Close.
	stopFollowing func() bool

	// warns bounds the warnings about failed handshakes, which anyone
	// who can connect may cause, and rejects apart those about clients
	// the verifiers rejected: a flood of cheap failures (bytes that are
	// not TLS) must not send those to debug level. Nor must one source's
	// flood of rejections send the others': each source has a share.
	warns, rejects ratelog.Limiter

	// The connections in their handshake, at most v.maxHandshakes, by
	// the source they came from, each source's oldest first; what they
	// have read in all, at most maxHandshakeBytes.
	hmu    sync.Mutex
	inHand map[net.Conn]*list.Element // of an *inHandshake in bySrc
	bySrc  map[netip.Addr]*list.List
	seq    uint64 // of the last handshake admitted
	read   int
}

// inHandshake is a connection in its handshake.
type inHandshake struct {
	conn *handshakeConn
	src  netip.Addr
	seq  uint64 // the order in which the handshakes began
	read int    // bytes its handshake has read
}

// handshakeConn is an accepted connection, which counts what its
// handshake reads against the listener's bound. crypto/tls holds a
// handshake message until it is whole, and a client's certificate
// message may be 256 KiB: a client that needs no key sends all of it
// but its end, and the server holds it until the handshake timeout.
// Bounding the handshakes' count alone let 1,024 such clients from one
// address hold 430 MB of a server.
type handshakeConn struct {
	net.Conn
	l    *listener
	done atomic.Bool // the handshake has ended: nothing more is counted
	why  error       // why it was closed to make room, if it was; l.hmu
}

func (c *handshakeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.done.Load() {
		c.l.count(c, n)
	}
	return n, err
}

// NetConn returns the connection accepted, as tls.Conn's does (a reset
// finds the TCP connection through it).
func (c *handshakeConn) NetConn() net.Conn { return c.Conn }

// SyscallConn is the accepted connection's, so that a program that
// reaches the socket through tls.Conn.NetConn (to set an option) still
// can.
func (c *handshakeConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("tlspin: the accepted connection, a %T, has no socket", c.Conn)
	}
	return sc.SyscallConn()
}

// errHandshakeBytes is why a handshake was closed for the bytes of others.
var errHandshakeBytes = fmt.Errorf("tlspin: closed to make room for a newer client: the handshakes in progress had read over %d MiB, this client's address the most", maxHandshakeBytes>>20)

// admit counts raw among the connections in their handshake. If the
// bound is reached, it first closes the handshake that began first among
// those of the source holding the most: a host that opens connections
// faster than the bound per handshake time closes its own, not those of
// clients on a long path.
func (l *listener) admit(raw *handshakeConn) {
	l.hmu.Lock()
	var victim net.Conn
	if len(l.inHand) >= l.v.maxHandshakes {
		var most *list.List
		for _, q := range l.bySrc {
			if most == nil || q.Len() > most.Len() ||
				q.Len() == most.Len() && q.Front().Value.(*inHandshake).seq < most.Front().Value.(*inHandshake).seq {
				most = q
			}
		}
		h := most.Front().Value.(*inHandshake)
		h.conn.why = fmt.Errorf("tlspin: closed to make room for a newer client: %d handshakes were in progress (WithMaxHandshakes)", l.v.maxHandshakes)
		victim = h.conn
		l.removeLocked(victim)
	}
	src := netsrc.Of(raw.RemoteAddr())
	q := l.bySrc[src]
	if q == nil {
		q = list.New()
		l.bySrc[src] = q
	}
	l.seq++
	l.inHand[raw] = q.PushBack(&inHandshake{conn: raw, src: src, seq: l.seq})
	l.hmu.Unlock()
	if victim != nil {
		victim.Close() // its handshake fails; serveHandshake logs why
	}
}

// count adds n bytes read by c's handshake to what the handshakes hold.
// Past maxHandshakeBytes, it closes the handshake that began first among
// those of the source that has read the most, until they are within it:
// a host that sends large handshakes and holds them closes its own, not
// those of other clients.
func (l *listener) count(c *handshakeConn, n int) {
	l.hmu.Lock()
	el, ok := l.inHand[c]
	if !ok {
		l.hmu.Unlock()
		return
	}
	h := el.Value.(*inHandshake)
	h.read += n
	l.read += n
	var victims []net.Conn
	for l.read > maxHandshakeBytes {
		v := l.mostRead().Front().Value.(*inHandshake)
		v.conn.why = errHandshakeBytes
		victims = append(victims, v.conn)
		l.removeLocked(v.conn)
	}
	l.hmu.Unlock()
	for _, v := range victims {
		v.Close() // its handshake fails; serveHandshake logs why
	}
}

// mostRead returns the handshakes of the source whose handshakes have
// read the most; l.hmu must be held. It is asked only past
// maxHandshakeBytes, of at most maxHandshakes handshakes.
func (l *listener) mostRead() *list.List {
	var most *list.List
	best := -1
	for _, q := range l.bySrc {
		sum := 0
		for e := q.Front(); e != nil; e = e.Next() {
			sum += e.Value.(*inHandshake).read
		}
		if sum > best {
			most, best = q, sum
		}
	}
	return most
}

// release ends raw's handshake slot, and its count of what it reads. It
// returns why raw was closed to make room for a newer client, if it was.
func (l *listener) release(raw *handshakeConn) error {
	raw.done.Store(true)
	l.hmu.Lock()
	defer l.hmu.Unlock()
	if l.removeLocked(raw) {
		return nil
	}
	return raw.why
}

// removeLocked ends raw's handshake slot, if it holds one; l.hmu must be
// held.
func (l *listener) removeLocked(raw net.Conn) bool {
	el, ok := l.inHand[raw]
	if !ok {
		return false
	}
	h := el.Value.(*inHandshake)
	q := l.bySrc[h.src]
	q.Remove(el)
	if q.Len() == 0 {
		delete(l.bySrc, h.src)
	}
	delete(l.inHand, raw)
	l.read -= h.read
	return true
}

// maxHandshakeBytes bounds what the handshakes in progress of a Listen
// listener have read, together (crypto/tls holds a handshake message
// until it is whole): 64 clients sending the largest certificate message
// crypto/tls takes (256 KiB) at once, or thousands of usual ones.
const maxHandshakeBytes = 16 << 20

// Accept-error backoff, as net/http (and internal/server) do for EMFILE
// and friends.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// acceptLoop accepts until the listener is closed, retrying any other
// accept error after a delay that doubles while the errors go on.
func (l *listener) acceptLoop() {
	var delay time.Duration
	for {
		raw, err := l.Listener.Accept()
		if err == nil {
			delay = 0
			hc := &handshakeConn{Conn: raw, l: l}
			l.admit(hc)
			go l.serveHandshake(hc)
			continue
		}
		if l.isClosed() {
			return // by Close: Accept says net.ErrClosed
		}
		if errors.Is(err, net.ErrClosed) {
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			l.Close()
			return
		}
		delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
		l.v.log.Warn("accept failed; retrying", "addr", l.Addr().String(), "error", err, "retry_in", delay)
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-l.done:
			timer.Stop()
		}
	}
}

// isClosed reports whether Close was called.
func (l *listener) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func (l *listener) serveHandshake(raw *handshakeConn) {
	since := time.Now()
	conn := tls.Server(raw, l.cfg)
	confirm := func(ctx context.Context) error { return l.v.Confirm(ctx, conn) }
	// The verification gets hctx from crypto/tls (ClientHelloInfo.Context).
	hctx, cancel := l.v.handshakeContext(l.ctx)
	err := l.v.handshake(l.ctx, hctx, conn, confirm)
	cancel()
	if why := l.release(raw); why != nil {
		err = why
	}
	if err != nil {
		l.v.pending.Forget(raw)
		l.logFailure(conn, err)
		raw.Close()
		return
	}
	l.v.watchConn(conn, raw.Conn, true, raw.RemoteAddr().String(), "", since)
	select {
	case l.conns <- conn:
	case <-l.done:
		conn.Close()
	}
}

// logFailure logs a client's failed handshake: at warn level with the
// reason, unless nothing went wrong worth telling (the client closed
// before it sent a ClientHello, or the verifiers were closed).
func (l *listener) logFailure(conn *tls.Conn, err error) {
	remote := conn.RemoteAddr().String()
	if l.v.closed() {
		l.v.log.Debug("client handshake cut short: verifiers closed", "remote", remote, "error", err)
		return
	}
	if l.isClosed() {
		l.v.log.Debug("client handshake cut short: listener closed", "remote", remote, "error", err)
		return
	}
	// No version was negotiated: no ClientHello arrived.
	if conn.ConnectionState().Version == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		l.v.log.Debug("client closed before its handshake began", "remote", remote, "error", err)
		return
	}
	kv := []any{"remote", remote, "reason", printable.Escape(err.Error())}
	src := netsrc.Of(conn.RemoteAddr())
	var re *RejectionError
	if !errors.As(err, &re) {
		l.warns.WarnFrom(l.v.log, src, "client handshake failed; closed", kv...)
		return
	}
	if re.PeerSHA256 != "" {
		kv = append(kv, "peer_sha256", re.PeerSHA256, "peer_spki", re.PeerSPKI)
	}
	l.rejects.WarnFrom(l.v.log, src, "client handshake failed; closed", kv...)
}

// Accept returns the next verified connection.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops listening and ends the handshakes in progress, whose
// connections could no longer be accepted; connections already accepted
// stay open.
func (l *listener) Close() error {
	var err error
	l.once.Do(func() {
		l.stopFollowing()
		close(l.done)
		l.cancel()
		err = l.Listener.Close()
	})
	return err
}
