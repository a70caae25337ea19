package proxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/keypair"
	"github.com/tlspin/tlspin/internal/proxy"
	"github.com/tlspin/tlspin/internal/server"
	"github.com/tlspin/tlspin/internal/wait"
)

func newCert(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: cn, SANs: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
}

// pinDecider allows exactly one leaf.
type pinDecider struct{ allow []byte }

func (d pinDecider) Verify(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
	if bytes.Equal(req.Leaf(), d.allow) {
		return &verify.Verdict{Allow: true}, nil
	}
	return &verify.Verdict{Reason: "not pinned"}, nil
}

// backend is a plaintext target: for each connection it reads to EOF,
// then answers with the SHA-256 of what it read and the bytes reversed in
// order of arrival (the same bytes, so the client can check them all).
type backend struct {
	addr     string
	accepted atomic.Int64
}

func startBackend(t testing.TB, network, addr string, handle func(net.Conn)) *backend {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{addr: ln.Addr().String()}
	if network == "unix" {
		b.addr = "unix:" + addr
	}
	serveEach(t, ln, func(c net.Conn) { b.accepted.Add(1); handle(c) })
	return b
}

// serveEach accepts on ln until the test ends, handling each connection
// on its own goroutine and closing it after; the cleanup closes ln and
// waits for every handler.
func serveEach(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer c.Close(); handle(c) })
		}
	})
}

// hashThenEcho reads to EOF (which needs the half-close passed through),
// then writes the SHA-256 of what it read followed by the bytes again.
func hashThenEcho(c net.Conn) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var got bytes.Buffer
	if _, err := io.Copy(&got, c); err != nil {
		return
	}
	sum := sha256.Sum256(got.Bytes())
	c.Write(sum[:])
	c.Write(got.Bytes())
}

type events struct {
	mu  sync.Mutex
	all []proxy.Event
}

func (e *events) on(ev proxy.Event) { e.mu.Lock(); e.all = append(e.all, ev); e.mu.Unlock() }
func (e *events) find(match func(proxy.Event) bool) (proxy.Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		if match(ev) {
			return ev, true
		}
	}
	return proxy.Event{}, false
}

// run starts a proxy with cfg on loopback and returns its address.
func run(t testing.TB, cfg proxy.Config) (string, *proxy.Proxy) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return runOn(t, cfg, ln)
}

// runOn is run on the listener ln.
func runOn(t testing.TB, cfg proxy.Config, ln net.Listener) (string, *proxy.Proxy) {
	t.Helper()
	p, err := proxy.New(cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), p
}

// exchange sends payload over c, half-closes, and checks the reply.
func exchange(t testing.TB, c net.Conn, payload []byte) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		werr <- err
	}()
	reply, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	sum := sha256.Sum256(payload)
	if len(reply) != 32+len(payload) || !bytes.Equal(reply[:32], sum[:]) || !bytes.Equal(reply[32:], payload) {
		return fmt.Errorf("reply of %d bytes for %d sent: bytes lost, duplicated or reordered", len(reply), len(payload))
	}
	return nil
}

// pair is a server-mode proxy requiring the client cert good, in front of
// a backend, and a client-mode proxy pinned to it in front of that.
type pair struct {
	good, srvCert tls.Certificate
	back          *backend
	serverAddr    string
	clientAddr    string
	serverEvents  *events
	metrics       *proxy.Metrics
}

func newPair(t testing.TB, network, backAddr string) *pair {
	p := &pair{good: newCert(t, "good"), srvCert: newCert(t, "server"), serverEvents: &events{}}
	p.back = startBackend(t, network, backAddr, hashThenEcho)
	p.metrics = proxy.NewMetrics("pin")
	scfg := pintls.ServerConfig(p.srvCert, pinDecider{allow: p.good.Leaf.Raw}, pintls.Options{Timeout: time.Second})
	choose := scfg.GetConfigForClient
	scfg.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		c, err := choose(hi)
		c.VerifyConnection = p.metrics.VerifyConnection(c.VerifyConnection)
		return c, err
	}
	p.serverAddr, _ = run(t, proxy.Config{Mode: proxy.ServerMode, TLS: scfg, Target: p.back.addr, OnEvent: p.serverEvents.on, Metrics: p.metrics})
	ccfg := pintls.ClientConfig(pinDecider{allow: p.srvCert.Leaf.Raw}, "", p.serverAddr, &p.good, pintls.Options{Timeout: time.Second})
	p.clientAddr, _ = run(t, proxy.Config{Mode: proxy.ClientMode, TLS: ccfg, Target: p.serverAddr})
	return p
}

// TestPayloadsAndHalfClose sends payloads of random sizes through both
// proxies (client mode, then server mode, then the backend), each
// half-closed, and checks every byte of the reply.
func TestPayloadsAndHalfClose(t *testing.T) {
	for _, target := range []string{"tcp", "unix"} {
		t.Run(target, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if target == "unix" {
				addr = filepath.Join(t.TempDir(), "backend.sock")
			}
			p := newPair(t, target, addr)
			rng := rand.New(rand.NewPCG(1, 2))
			sizes := []int{0, 1, 16<<10 - 1, 16 << 10, 16<<10 + 1}
			for range 10 {
				sizes = append(sizes, rng.IntN(512<<10))
			}
			var wg sync.WaitGroup
			for i, n := range sizes {
				payload := make([]byte, n)
				rand.NewChaCha8([32]byte{byte(i)}).Read(payload)
				wg.Go(func() {
					c, err := net.Dial("tcp", p.clientAddr)
					if err != nil {
						t.Error(err)
						return
					}
					defer c.Close()
					if err := exchange(t, c, payload); err != nil {
						t.Errorf("%d bytes: %v", n, err)
					}
				})
			}
			wg.Wait()
			if ev, ok := p.serverEvents.find(func(e proxy.Event) bool { return e.Kind == proxy.EventClosed && e.ToTarget == 16<<10 }); !ok || ev.FromTarget != 32+16<<10 || ev.Duration <= 0 {
				t.Errorf("no close event with the bytes each way: %+v", ev)
			}
		})
	}
}

// TestRejectedPeerNeverReachesTarget: a client the verifier rejects never
// causes a dial to the target; in client mode, a server the verifier
// rejects gets nothing of what the local client sent.
func TestRejectedPeerNeverReachesTarget(t *testing.T) {
	p := newPair(t, "tcp", "127.0.0.1:0")
	bad := newCert(t, "bad")
	c, err := tls.Dial("tcp", p.serverAddr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{bad}})
	if err == nil {
		c.Write([]byte("must not arrive"))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil {
		t.Fatal("rejected client read a reply")
	}
	ev, ok := waitEvent(p.serverEvents, func(e proxy.Event) bool { return e.Kind == proxy.EventRejected })
	if !ok || ev.By != server.RejectedByUs || !strings.Contains(ev.Reason, "not pinned") || ev.PeerSHA256 == "" {
		t.Errorf("rejection event %+v, want by us, with the reason and fingerprints", ev)
	}
	if n := p.back.accepted.Load(); n != 0 {
		t.Errorf("target dialled %d times for a rejected client", n)
	}

	// Client mode pinned to another server: the local client is closed,
	// the server never gets application data.
	var got atomic.Int64
	other := tlsServer(t, newCert(t, "other"), func(c *tls.Conn) {
		n, _ := io.Copy(io.Discard, c)
		got.Add(n)
	})
	ccfg := pintls.ClientConfig(pinDecider{allow: p.srvCert.Leaf.Raw}, "", other, nil, pintls.Options{Timeout: time.Second})
	cevents := &events{}
	local, _ := run(t, proxy.Config{Mode: proxy.ClientMode, TLS: ccfg, Target: other, OnEvent: cevents.on})
	lc, err := net.Dial("tcp", local)
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		// Reset before connect returned: the rejection was that quick.
	case err != nil:
		t.Fatal(err)
	default:
		defer lc.Close()
		lc.Write([]byte("secret"))
		lc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := lc.Read(make([]byte, 1)); err == nil {
			t.Fatal("local client got a reply through a rejected server")
		}
	}
	if ev, ok := waitEvent(cevents, func(e proxy.Event) bool { return e.Kind == proxy.EventRejected }); !ok || ev.By != server.RejectedByUs {
		t.Errorf("client-mode rejection %+v", ev)
	}
	if got.Load() != 0 {
		t.Errorf("rejected server received %d bytes", got.Load())
	}
}

func waitEvent(e *events, match func(proxy.Event) bool) (proxy.Event, bool) {
	var ev proxy.Event
	var ok bool
	wait.Until(5*time.Second, func() bool { ev, ok = e.find(match); return ok })
	return ev, ok
}

// tlsServer runs handle on each connection of a loopback TLS server.
func tlsServer(t testing.TB, cert tls.Certificate, handle func(*tls.Conn)) string {
	return e2e.ServeTLS(t, cert, func(c *tls.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		handle(c)
	})
}

// TestResetPropagates: a target that aborts with a reset makes the TLS
// client see an error, not a clean end of stream.
func TestResetPropagates(t *testing.T) {
	srvCert := newCert(t, "server")
	back := startBackend(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		c.Read(make([]byte, 1))
		c.(*net.TCPConn).SetLinger(0)
	})
	addr, _ := run(t, proxy.Config{Mode: proxy.ServerMode, TLS: pintls.ServerConfig(srvCert, nil, pintls.Options{}), Target: back.addr})
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("x"))
	_, err = io.ReadAll(c)
	if err == nil {
		t.Fatal("a reset target looked like a clean close to the client")
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Logf("client saw %v", err)
	}
}

// TestReloadKeepsLiveStreams changes the certificate on disk under a live
// stream: the stream continues, a new connection gets the new certificate.
func TestReloadKeepsLiveStreams(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "cert.pem")
	write := func() tls.Certificate {
		key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "rotating"})
		if err != nil {
			t.Fatal(err)
		}
		kp, err := certs.EncodeKey(key)
		if err != nil {
			t.Fatal(err)
		}
		tmp := file + ".new"
		if err := os.WriteFile(tmp, append(kp, certs.EncodeCert(c)...), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{c.Raw}, Leaf: c}
	}
	first := write()
	cert, err := keypair.Load(file, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go cert.Watch(ctx, 20*time.Millisecond)
	echo := startBackend(t, "tcp", "127.0.0.1:0", func(c net.Conn) { io.Copy(c, c) })
	cfg := pintls.ServerConfig(tls.Certificate{}, nil, pintls.Options{})
	cfg.Certificates, cfg.GetCertificate = nil, cert.GetCertificate
	addr, _ := run(t, proxy.Config{Mode: proxy.ServerMode, TLS: cfg, Target: echo.addr})
	leafOf := func(c *tls.Conn) []byte { return c.ConnectionState().PeerCertificates[0].Raw }

	live, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if !bytes.Equal(leafOf(live), first.Leaf.Raw) {
		t.Fatal("first connection did not get the first certificate")
	}
	ping := func() {
		live.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := live.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 4)
		if _, err := io.ReadFull(live, b); err != nil || string(b) != "ping" {
			t.Fatalf("live stream after reload: %q %v", b, err)
		}
	}
	ping()
	second := write()
	if !wait.Until(5*time.Second, func() bool { return bytes.Equal(cert.Current().Leaf.Raw, second.Leaf.Raw) }) {
		t.Fatal("certificate change on disk not picked up")
	}
	ping()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !bytes.Equal(leafOf(c), second.Leaf.Raw) {
		t.Error("new connection after reload got the old certificate")
	}
	// A bad file keeps the pair in use.
	os.WriteFile(file, []byte("garbage"), 0o600)
	if err := cert.Reload(); err == nil {
		t.Error("reload of a garbage file succeeded")
	}
	if !bytes.Equal(cert.Current().Leaf.Raw, second.Leaf.Raw) {
		t.Error("a failed reload dropped the certificate in use")
	}
}

// TestMetricsScrape scrapes the metrics after traffic.
func TestMetricsScrape(t *testing.T) {
	p := newPair(t, "tcp", "127.0.0.1:0")
	c, err := net.Dial("tcp", p.clientAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := exchange(t, c, []byte("hello metrics")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// A client the verifier rejects, and one with no certificate, which
	// no verifier is asked about: not counted as the verifier's.
	for _, certs := range [][]tls.Certificate{{newCert(t, "bad")}, nil} {
		bad, err := tls.Dial("tcp", p.serverAddr, &tls.Config{InsecureSkipVerify: true, Certificates: certs})
		if err == nil {
			bad.Read(make([]byte, 1))
			bad.Close()
		}
	}
	var body string
	wait.Until(5*time.Second, func() bool {
		rec := httptest.NewRecorder()
		p.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body = rec.Body.String()
		return strings.Contains(body, `tlspin_proxy_handshakes_total{outcome="rejected",verifier="pin"} 1`) &&
			strings.Contains(body, `tlspin_proxy_handshakes_total{outcome="no_certificate",verifier="pin"} 1`) &&
			strings.Contains(body, `tlspin_proxy_bytes_total{direction="to_target"} 13`)
	})
	for _, want := range []string{
		`tlspin_proxy_handshakes_total{outcome="accepted",verifier="pin"} 1`,
		`tlspin_proxy_handshakes_total{outcome="rejected",verifier="pin"} 1`,
		`tlspin_proxy_handshakes_total{outcome="no_certificate",verifier="pin"} 1`,
		`tlspin_proxy_verify_seconds_count{verifier="pin"} 2`,
		`tlspin_proxy_bytes_total{direction="to_target"} 13`,
		`tlspin_proxy_bytes_total{direction="from_target"} 45`,
		`tlspin_proxy_open_connections 0`,
		`tlspin_proxy_accepted_total 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

// TestGigabyte sends 1 GiB through both proxies and checks its SHA-256
// at both ends.
func TestGigabyte(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfer")
	}
	const size = gigabyte
	var backSum [32]byte
	var backN int64
	p := &pair{good: newCert(t, "good"), srvCert: newCert(t, "server")}
	back := startBackend(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		h := sha256.New()
		backN, _ = io.Copy(h, c)
		copy(backSum[:], h.Sum(nil))
		c.Write(backSum[:])
	})
	scfg := pintls.ServerConfig(p.srvCert, pinDecider{allow: p.good.Leaf.Raw}, pintls.Options{Timeout: time.Second})
	saddr, _ := run(t, proxy.Config{Mode: proxy.ServerMode, TLS: scfg, Target: back.addr})
	ccfg := pintls.ClientConfig(pinDecider{allow: p.srvCert.Leaf.Raw}, "", saddr, &p.good, pintls.Options{Timeout: time.Second})
	caddr, _ := run(t, proxy.Config{Mode: proxy.ClientMode, TLS: ccfg, Target: saddr})
	c, err := net.Dial("tcp", caddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	h := sha256.New()
	src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{}), size), h)
	start := time.Now()
	if _, err := io.Copy(c, src); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if backN != size || !bytes.Equal(got, backSum[:]) || !bytes.Equal(got, h.Sum(nil)) {
		t.Fatalf("target got %d bytes with SHA-256 %x; sent %d with %x", backN, got, size, h.Sum(nil))
	}
	t.Logf("%d MiB through two proxies in %s", size>>20, time.Since(start).Round(time.Millisecond))
}

// TestIdleTimeout: a connection is closed once no byte moved either way
// for the idle timeout, and not before, even when only one direction
// keeps moving bytes (the other direction's deadline passes meanwhile).
func TestIdleTimeout(t *testing.T) {
	// A beat late by more than 3/4 of idle would end the connection
	// rightly, so idle is long enough for a loaded machine.
	const idle = 800 * time.Millisecond
	const beats = 8 // one byte every idle/4, for two idle timeouts
	for _, tc := range []struct {
		name              string
		toTarget, fromTgt bool
	}{
		{"idle both ways", false, false},
		{"client sends, target silent", true, false},
		{"target sends, client silent", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var lastSent atomic.Int64 // unix ns of the last byte sent by either end
			lastSent.Store(time.Now().UnixNano())
			received := make(chan int64, 1)
			back := startBackend(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
				c.SetDeadline(time.Now().Add(30 * time.Second))
				var sink sync.WaitGroup
				var n int64
				sink.Go(func() { n, _ = io.Copy(io.Discard, c) })
				if tc.fromTgt {
					for range beats {
						lastSent.Store(time.Now().UnixNano())
						if _, err := c.Write([]byte{'b'}); err != nil {
							break
						}
						time.Sleep(idle / 4)
					}
				}
				sink.Wait()
				received <- n
			})
			ev := &events{}
			addr, _ := run(t, proxy.Config{Mode: proxy.ServerMode, TLS: pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{}),
				Target: back.addr, IdleTimeout: idle, OnEvent: ev.on})
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			closed := make(chan time.Time, 1)
			var got atomic.Int64
			go func() {
				n, _ := io.Copy(io.Discard, c)
				got.Store(n)
				closed <- time.Now()
			}()
			if tc.toTarget {
				for range beats {
					lastSent.Store(time.Now().UnixNano())
					if _, err := c.Write([]byte{'c'}); err != nil {
						t.Fatalf("write: %v (closed while one direction was busy)", err)
					}
					time.Sleep(idle / 4)
				}
			}
			var at time.Time
			select {
			case at = <-closed:
			case <-time.After(20 * time.Second):
				t.Fatal("connection idle both ways not closed")
			}
			if quiet := at.Sub(time.Unix(0, lastSent.Load())); quiet < idle {
				t.Errorf("closed after %s without a byte either way, want at least the idle timeout %s", quiet, idle)
			}
			if want := map[bool]int64{true: beats}[tc.fromTgt]; got.Load() != want {
				t.Errorf("client got %d bytes from the target, want %d", got.Load(), want)
			}
			select {
			case n := <-received:
				if want := map[bool]int64{true: beats}[tc.toTarget]; n != want {
					t.Errorf("target got %d bytes from the client, want %d", n, want)
				}
			case <-time.After(20 * time.Second):
				t.Error("the target's connection was not closed")
			}
			if e, ok := waitEvent(ev, func(e proxy.Event) bool { return e.Kind == proxy.EventClosed }); !ok || !strings.Contains(e.Reason, "idle") {
				t.Errorf("close event %+v, want the idle timeout as its reason", e)
			}
		})
	}
}
