package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/server"
	"github.com/tlspin/tlspin/internal/wait"
)

// newCert makes a fresh ECDSA key pair.
func newCert(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: cn, SANs: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
}

func sha(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// pinDecider allows exactly one leaf (in process: the server's logic is
// under test here, the plugin host has its own tests).
type pinDecider struct{ allow string }

func (d pinDecider) Verify(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
	if sha(req.Leaf()) == d.allow {
		return &verify.Verdict{Allow: true}, nil
	}
	return &verify.Verdict{Reason: "not pinned: " + sha(req.Leaf())}, nil
}

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events []server.Event
	notify chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) on(e server.Event) error {
	e.Data = bytes.Clone(e.Data)
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) all() []server.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]server.Event{}, r.events...)
}

// count is how many events of kind were recorded.
func (r *recorder) count(kind server.EventKind) int {
	n := 0
	for _, e := range r.all() {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// waitFor waits until some event satisfies match, for at most d.
func (r *recorder) waitFor(t *testing.T, d time.Duration, match func(server.Event) bool) server.Event {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		for _, e := range r.all() {
			if match(e) {
				return e
			}
		}
		select {
		case <-r.notify:
		case <-deadline.C:
			t.Fatalf("no matching event within %s; events: %+v", d, r.all())
		}
	}
}

type testServer struct {
	addr string
	srv  *server.Server
	rec  *recorder
	stop context.CancelFunc
	done chan error
}

// start runs a server with cfg on a loopback port; cfg.TLS defaults to a
// mutual-TLS configuration allowing only client.
func start(t *testing.T, cfg server.Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, cfg, ln)
}

// startOn is start on the listener ln.
func startOn(t *testing.T, cfg server.Config, ln net.Listener) *testServer {
	t.Helper()
	rec := newRecorder()
	if cfg.OnEvent == nil && cfg.Output == nil {
		cfg.OnEvent = rec.on
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{addr: ln.Addr().String(), srv: srv, rec: rec, stop: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ts.done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return ts
}

func mtlsConfig(t *testing.T, allow tls.Certificate) *tls.Config {
	return pintls.ServerConfig(newCert(t, "server"), pinDecider{allow: sha(allow.Leaf.Raw)}, pintls.Options{Timeout: time.Second})
}

// dial completes a TLS handshake as a client presenting cert (if any).
func dial(t *testing.T, addr string, cert *tls.Certificate) (*tls.Conn, error) {
	t.Helper()
	cfg := &tls.Config{InsecureSkipVerify: true}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// send dials, writes msg, closes the write side and waits for the server
// to close; it returns the read error (an alert if rejected).
func send(t *testing.T, addr string, cert *tls.Certificate, msg string) error {
	t.Helper()
	c, err := dial(t, addr, cert)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, c)
	return err
}

func TestMutualTLS(t *testing.T) {
	good := newCert(t, "good")
	bad := newCert(t, "bad")
	ts := start(t, server.Config{TLS: mtlsConfig(t, good)})
	tests := []struct {
		name    string
		cert    *tls.Certificate
		refuses bool // the client refuses the server's certificate
		accept  bool
		reason  string
		by      server.Refusal
	}{
		{"pinned client", &good, false, true, "", ""},
		{"other client", &bad, false, false, "we rejected the client: not pinned: " + sha(bad.Leaf.Raw), server.RejectedByUs},
		{"no client certificate", nil, false, false, "we rejected the client: it sent no certificate", server.RejectedByUs},
		{"client refusing our certificate", &good, true, false, "the client refused the handshake (alert: tls: bad certificate)", server.RefusedByPeer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := "secret from " + tc.name
			var err error
			if tc.refuses {
				_, err = tls.Dial("tcp", ts.addr, &tls.Config{
					InsecureSkipVerify: true,
					Certificates:       []tls.Certificate{*tc.cert},
					VerifyConnection:   func(tls.ConnectionState) error { return errors.New("not the server I pinned") },
				})
			} else {
				err = send(t, ts.addr, tc.cert, msg+"\n")
			}
			if tc.accept && err != nil {
				t.Fatalf("accepted client: %v", err)
			}
			if !tc.accept && err == nil {
				t.Fatal("rejected client saw a clean close, want an alert")
			}
			if tc.accept {
				ts.rec.waitFor(t, 5*time.Second, func(e server.Event) bool { return e.Kind == server.EventData && string(e.Data) == msg })
				return
			}
			e := ts.rec.waitFor(t, 5*time.Second, func(e server.Event) bool {
				return e.Kind == server.EventReject && strings.Contains(e.Reason, tc.reason)
			})
			if e.By != tc.by {
				t.Errorf("rejection by %q, want %q", e.By, tc.by)
			}
			if tc.cert != nil && !tc.refuses {
				if e.PeerSHA256 != sha(tc.cert.Leaf.Raw) || !strings.HasPrefix(e.PeerSPKI, "sha256//") {
					t.Errorf("rejection fingerprints %q %q, want the client's leaf %s", e.PeerSHA256, e.PeerSPKI, sha(tc.cert.Leaf.Raw))
				}
			}
			for _, e := range ts.rec.all() {
				if e.Kind == server.EventData && strings.Contains(string(e.Data), msg) {
					t.Fatalf("data from a rejected client was emitted: %q", e.Data)
				}
			}
		})
	}
}

// clientHello returns the first bytes a real TLS client sends.
func clientHello(t *testing.T) []byte {
	t.Helper()
	a, b := net.Pipe()
	go func() {
		c := tls.Client(a, &tls.Config{InsecureSkipVerify: true})
		c.SetDeadline(time.Now().Add(time.Second))
		c.Handshake()
		a.Close()
	}()
	buf := make([]byte, 4096)
	b.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := b.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	return buf[:n]
}

// TestBadClientsDoNotStallOthers opens non-TLS, truncated-handshake and
// slow (one byte per 100ms) clients, then checks that a good client is
// served at once, and that every bad one is rejected by the handshake
// timeout.
func TestBadClientsDoNotStallOthers(t *testing.T) {
	good := newCert(t, "good")
	const hsTimeout = 1500 * time.Millisecond
	ts := start(t, server.Config{TLS: mtlsConfig(t, good), HandshakeTimeout: hsTimeout, MaxConns: 64})
	hello := clientHello(t)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bad := map[string]func(c net.Conn){
		"non-TLS":   func(c net.Conn) { io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); <-ctx.Done() },
		"truncated": func(c net.Conn) { c.Write(hello[:len(hello)/2]); <-ctx.Done() },
		"slow": func(c net.Conn) {
			for _, b := range hello {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		},
		"silent": func(c net.Conn) { <-ctx.Done() },
	}
	const each = 5
	for name, f := range bad {
		for range each {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			wg.Go(func() { defer c.Close(); f(c) })
		}
	}
	start := time.Now()
	if err := send(t, ts.addr, &good, "still served\n"); err != nil {
		t.Fatalf("good client among bad ones: %v", err)
	}
	ts.rec.waitFor(t, 5*time.Second, func(e server.Event) bool { return e.Kind == server.EventData && string(e.Data) == "still served" })
	if d := time.Since(start); d > hsTimeout {
		t.Errorf("good client took %s among bad ones, want well under the handshake timeout %s", d, hsTimeout)
	}
	// Every bad client is rejected: non-TLS at once, the rest by the timeout.
	deadline := time.Now().Add(hsTimeout + 3*time.Second)
	for {
		n := ts.rec.count(server.EventReject)
		if n == each*len(bad) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d bad clients rejected", n, each*len(bad))
		}
		time.Sleep(20 * time.Millisecond)
	}
	nonTLS := 0
	for _, e := range ts.rec.all() {
		if e.Kind == server.EventReject && e.Reason == "client did not speak TLS" {
			nonTLS++
		}
		if e.Kind == server.EventData && string(e.Data) != "still served" {
			t.Errorf("data from a client that never completed a handshake: %q", e.Data)
		}
	}
	if nonTLS != each {
		t.Errorf("%d non-TLS rejections, want %d", nonTLS, each)
	}
}

// TestClosedBeforeTheHandshake: a client that connects and closes before
// sending anything (a port scanner, a health check, tlspin send stopping
// before its ClientHello) is told apart from one that closes in the middle
// of its handshake; neither is called rejected.
func TestClosedBeforeTheHandshake(t *testing.T) {
	good := newCert(t, "good")
	ts := start(t, server.Config{TLS: mtlsConfig(t, good)})
	hello := clientHello(t)
	for _, tc := range []struct {
		name, sends, reason string
	}{
		{"nothing", "", "client closed the connection before a ClientHello was answered"},
		{"half a ClientHello", string(hello[:len(hello)/2]), "client closed the connection during the handshake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, tc.sends)
			c.(*net.TCPConn).CloseWrite()
			ts.rec.waitFor(t, 5*time.Second, func(e server.Event) bool {
				return e.Kind == server.EventReject && e.Reason == tc.reason && e.By == server.HandshakeFailed
			})
			c.Close()
		})
	}
}

// lineCounter counts what the server writes and the longest write.
type lineCounter struct {
	mu      sync.Mutex
	bytes   int
	longest int
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bytes += len(p)
	l.longest = max(l.longest, len(p))
	return len(p), nil
}

func (l *lineCounter) get() (int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes, l.longest
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestMemoryPerConnectionIsBounded has many clients send long lines with no
// newline and keep their connections open: the server's heap must not
// grow with what they sent.
func TestMemoryPerConnectionIsBounded(t *testing.T) {
	const (
		clients = 16
		perConn = 2 << 20
		maxLine = 4096
	)
	out := &lineCounter{}
	cfg := pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{})
	ts := start(t, server.Config{TLS: cfg, Output: out, MaxLine: maxLine})
	before := heapInUse()
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	conns := make([]*tls.Conn, clients)
	var wg sync.WaitGroup
	for i := range conns {
		c, err := dial(t, ts.addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		defer c.Close()
		wg.Go(func() {
			for sent := 0; sent < perConn; sent += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Everything sent reached the output, in pieces no longer than MaxLine.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := out.get()
		if n >= clients*perConn-clients*maxLine {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("output has %d of %d bytes", n, clients*perConn)
		}
		time.Sleep(20 * time.Millisecond)
	}
	after := heapInUse()
	_, longest := out.get()
	if longest > maxLine+1 {
		t.Errorf("a write of %d bytes, want at most MaxLine+newline = %d", longest, maxLine+1)
	}
	// Both ends are in this process: allow generous TLS buffers per
	// connection, far less than the 32 MiB sent.
	growth := int64(after) - int64(before)
	if limit := int64(clients * 256 << 10); growth > limit {
		t.Errorf("heap grew by %d bytes with %d open connections that sent %d bytes each; want < %d", growth, clients, perConn, limit)
	}
	t.Logf("heap growth %d KiB for %d connections that sent %d MiB in all", growth>>10, clients, clients*perConn>>20)
}

// TestShutdownLetsConnectionsFinish checks the grace period: a client that
// finishes within it is served whole, one that does not is closed at its
// end with its half line emitted, marked unterminated, and new clients
// are refused.
func TestShutdownLetsConnectionsFinish(t *testing.T) {
	cfg := pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{})
	const grace = 700 * time.Millisecond
	ts := start(t, server.Config{TLS: cfg, GracePeriod: grace})
	finisher, err := dial(t, ts.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer finisher.Close()
	lingerer, err := dial(t, ts.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lingerer.Close()
	io.WriteString(lingerer, "half a li")
	io.WriteString(finisher, "first ")
	ts.rec.waitFor(t, 5*time.Second, func(e server.Event) bool { return e.Kind == server.EventConnect && e.Conn == 2 })

	stopped := time.Now()
	ts.stop()
	// The finisher ends its line at once, well within the grace period
	// however long the check below takes on a loaded machine.
	io.WriteString(finisher, "line\n")
	finisher.CloseWrite()
	// New clients are refused once the listener is closed.
	if !wait.Until(2*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", ts.addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	}) {
		t.Error("server still accepting after shutdown began")
	}
	ts.rec.waitFor(t, 5*time.Second, func(e server.Event) bool {
		return e.Kind == server.EventData && string(e.Data) == "first line" && !e.Unterminated
	})

	select {
	case err := <-ts.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(grace + 5*time.Second):
		t.Fatal("Serve did not return after the grace period")
	}
	if d := time.Since(stopped); d < grace {
		t.Errorf("Serve returned after %s, before the grace period %s", d, grace)
	}
	ts.rec.waitFor(t, time.Second, func(e server.Event) bool {
		return e.Kind == server.EventData && string(e.Data) == "half a li" && e.Unterminated
	})
	ts.rec.waitFor(t, time.Second, func(e server.Event) bool {
		return e.Kind == server.EventClose && strings.Contains(e.Reason, "grace period")
	})
	ts.done <- nil // for Cleanup
}

// TestOnceStopsOnSignal: --once with a client that never finishes still
// stops within the grace period when ctx ends.
func TestOnceStopsOnSignal(t *testing.T) {
	cfg := pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{})
	ts := start(t, server.Config{TLS: cfg, Once: true, GracePeriod: 200 * time.Millisecond})
	c, err := dial(t, ts.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ts.rec.waitFor(t, 5*time.Second, func(e server.Event) bool { return e.Kind == server.EventConnect })
	ts.stop()
	select {
	case err := <-ts.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Once server ignored its context")
	}
	ts.done <- nil
}

// writerFunc adapts a function to io.Writer.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestOutputFailureStopsTheServer: when the output cannot take what a
// client sent (a full disk), the server resets that client's connection,
// so that the client sees an error rather than a clean close, writes
// nothing after the failed write, and stops by itself, Serve returning
// the error.
func TestOutputFailureStopsTheServer(t *testing.T) {
	full := &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}
	tests := []struct {
		name string
		// failOn is the event OnEvent fails on; "" writes lines to an
		// Output that fails.
		failOn server.EventKind
	}{
		{"output", ""},
		{"data event", server.EventData},
		{"connection event", server.EventConnect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// tries counts the writes from the failed one on: a full disk
			// fails them all.
			var tries atomic.Int32
			write := func(fails bool) error {
				if fails || tries.Load() > 0 {
					tries.Add(1)
					return full
				}
				return nil
			}
			cfg := server.Config{TLS: pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{})}
			if tt.failOn == "" {
				cfg.Output = writerFunc(func(p []byte) (int, error) { return 0, write(true) })
			} else {
				cfg.OnEvent = func(e server.Event) error { return write(e.Kind == tt.failOn) }
			}
			ts := start(t, cfg)
			err := send(t, ts.addr, nil, "important line\nand another\n")
			if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
				t.Errorf("the client saw %v, want a reset", err)
			}
			select {
			case err := <-ts.done:
				var oe *server.OutputError
				if !errors.As(err, &oe) || !errors.Is(err, syscall.ENOSPC) {
					t.Errorf("Serve: %v, want an *OutputError wrapping ENOSPC", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the server still runs after its output failed")
			}
			ts.done <- nil // for Cleanup
			if n := tries.Load(); n != 1 {
				t.Errorf("%d writes from the failed one on, want 1", n)
			}
		})
	}
}

// TestFullServerEvictsTheIdlest: with every slot taken, the next client
// is served at once and the connection idle the longest is closed, not
// the one that was active more recently (all come from one address, the
// one holding the most).
func TestFullServerEvictsTheIdlest(t *testing.T) {
	cfg := pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{})
	ts := start(t, server.Config{TLS: cfg, MaxConns: 2})
	idlest, err := dial(t, ts.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer idlest.Close()
	// The client's handshake ends before the server's, which reads the
	// client's Finished: wait for the server's side, or that read may come
	// after active's data and make idlest the more recently active.
	ts.rec.waitFor(t, 5*time.Second, func(e server.Event) bool { return e.Kind == server.EventConnect && e.Conn == 1 })
	active, err := dial(t, ts.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer active.Close()
	io.WriteString(active, "still here\n")
	ts.rec.waitFor(t, 5*time.Second, func(e server.Event) bool { return e.Kind == server.EventData && e.Conn == 2 })
	if err := send(t, ts.addr, nil, "third\n"); err != nil {
		t.Fatalf("third client beyond --max-conns 2: %v", err)
	}
	ts.rec.waitFor(t, 5*time.Second, func(e server.Event) bool { return e.Kind == server.EventData && string(e.Data) == "third" })
	e := ts.rec.waitFor(t, 5*time.Second, func(e server.Event) bool { return e.Kind == server.EventClose && e.Conn == 1 })
	if !strings.Contains(e.Reason, "idle the longest") {
		t.Errorf("idlest connection closed with reason %q, want eviction", e.Reason)
	}
	io.WriteString(active, "and served\n")
	ts.rec.waitFor(t, 5*time.Second, func(e server.Event) bool {
		return e.Kind == server.EventData && e.Conn == 2 && string(e.Data) == "and served"
	})
}

// TestOnceServesOneAcceptedClient: with Once, a stray TCP connection and
// a rejected client do not use it up; the first accepted client does, and
// then Serve returns.
func TestOnceServesOneAcceptedClient(t *testing.T) {
	good := newCert(t, "good")
	bad := newCert(t, "bad")
	ts := start(t, server.Config{TLS: mtlsConfig(t, good), Once: true})
	stray, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	stray.Close()
	if err := send(t, ts.addr, &bad, "rejected\n"); err == nil {
		t.Fatal("rejected client saw a clean close")
	}
	if err := send(t, ts.addr, &good, "the one\n"); err != nil {
		t.Fatalf("accepted client after a stray connection and a rejected one: %v", err)
	}
	select {
	case err := <-ts.done:
		if err != nil {
			t.Fatal(err)
		}
		ts.done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("Once server still running after serving its client")
	}
	ts.rec.waitFor(t, time.Second, func(e server.Event) bool { return e.Kind == server.EventData && string(e.Data) == "the one" })
	if _, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		t.Error("Once server still accepting after its client")
	}
}

// flakyListener fails Accept a few times the way a process out of file
// descriptors does.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func TestAcceptErrorsAreRetried(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &flakyListener{Listener: inner, fails: 5}
	rec := newRecorder()
	srv, err := server.New(server.Config{TLS: pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{}), OnEvent: rec.on})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	if err := send(t, inner.Addr().String(), nil, "after EMFILE\n"); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 5*time.Second, func(e server.Event) bool { return e.Kind == server.EventData })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestNewNeedsTLS(t *testing.T) {
	if _, err := server.New(server.Config{}); err == nil {
		t.Fatal("New without TLS succeeded")
	}
}

// TestLineEnds: a line ends at "\n", and a "\r" just before it goes with
// it (CRLF, as telnet and Windows clients send), wherever the two fall in
// what the server reads: a "\r" at the end of its 4 KiB buffer used to
// stay on the line. Any other "\r" is the line's.
func TestLineEnds(t *testing.T) {
	long := strings.Repeat("A", 4095)
	for _, tt := range []struct {
		name, msg string
		want      []string
	}{
		{"LF", "a\nb\n", []string{"a", "b"}},
		{"CRLF", "a\r\nb\r\n", []string{"a", "b"}},
		{"CRLF across the read buffer", long + "\r\nBB\r\n", []string{long, "BB"}},
		{"a CR inside a line", "a\rb\n\r\n", []string{"a\rb", ""}},
		{"a last line without LF keeps its CR", "a\r\nlast\r", []string{"a", "last\r"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, server.Config{TLS: pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{})})
			if err := send(t, ts.addr, nil, tt.msg); err != nil {
				t.Fatal(err)
			}
			ts.rec.waitFor(t, 10*time.Second, func(e server.Event) bool { return e.Kind == server.EventClose })
			var got []string
			for _, e := range ts.rec.all() {
				if e.Kind == server.EventData {
					got = append(got, string(e.Data))
				}
			}
			if !slices.Equal(got, tt.want) {
				short := func(ls []string) (out []string) {
					for _, l := range ls {
						out = append(out, fmt.Sprintf("%d bytes ending %q", len(l), l[max(0, len(l)-3):]))
					}
					return out
				}
				t.Errorf("lines %q, want %q", short(got), short(tt.want))
			}
		})
	}
}
