package proxy_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/proxy"
	"github.com/tlspin/tlspin/internal/server"
	"github.com/tlspin/tlspin/internal/tls13raw"
)

// countingEcho echoes, counting the bytes it read.
type countingEcho struct{ n atomic.Int64 }

func (e *countingEcho) Write(p []byte) (int, error) { e.n.Add(int64(len(p))); return len(p), nil }

// TestKeyUpdateFloodDoesNotOutliveIdleTimeout: a TLS 1.3 client of the
// proxy that never reads sends lines to an echoing target and asks for key
// updates between them, each answered by a record crypto/tls writes from
// inside the proxy's read, until those writes block; the echo's writes
// toward it block too. No direction is left in a read, where the idle
// deadline was; --idle-timeout must still close the connection. It used
// to be held for ever (until evicted): the idle path's tls.Conn.Close
// waited for the lock of the key update's write, blocked for good.
func TestKeyUpdateFloodDoesNotOutliveIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	var got countingEcho
	back := startBackend(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		c.SetDeadline(time.Now().Add(60 * time.Second))
		io.Copy(io.MultiWriter(c, &got), c)
	})
	ev := &events{}
	addr, _ := runOn(t, proxy.Config{Mode: proxy.ServerMode, TLS: pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{}),
		Target: back.addr, IdleTimeout: idle, OnEvent: ev.on}, smallSendBuffers(t))

	raw := keyUpdateFlood(t, addr)
	wantIdleClose(t, ev, idle, got.n.Load, raw)
}

// TestHalfClosedClientThatDoesNotReadIsIdle: a client that sends its
// request, half-closes and never reads the reply. Its direction ends at
// the half-close; the other is blocked writing to it, and no read is left
// for the idle deadline to end. --idle-timeout must still close it.
func TestHalfClosedClientThatDoesNotReadIsIdle(t *testing.T) {
	const idle = 300 * time.Millisecond
	var sent atomic.Int64
	back := startBackend(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		c.SetDeadline(time.Now().Add(60 * time.Second))
		io.Copy(io.Discard, c)
		buf := make([]byte, 64<<10)
		for range 1 << 10 { // 64 MiB at most
			n, err := c.Write(buf)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	ev := &events{}
	addr, _ := runOn(t, proxy.Config{Mode: proxy.ServerMode, TLS: pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{}),
		Target: back.addr, IdleTimeout: idle, OnEvent: ev.on}, smallSendBuffers(t))
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET /big\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	wantIdleClose(t, ev, idle, sent.Load, c)
}

// wantIdleClose waits for the target's traffic (bytes, as counted by
// progress) to stop, then for the proxy to close the connection as idle,
// within the idle timeout and close_notify's 5 s; client is the test's
// end, closed once the proxy closed or the test gives up. A connection
// the target still has traffic for after 30 s, or none for 8 s without a
// close, fails the test.
func wantIdleClose(t *testing.T, ev *events, idle time.Duration, progress func() int64, client io.Closer) {
	t.Helper()
	closed := func(e proxy.Event) bool { return e.Kind == proxy.EventClosed }
	n, quiet := int64(-1), time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(idle / 10) {
		if _, ok := ev.find(closed); ok {
			break
		}
		if m := progress(); m != n {
			n, quiet = m, time.Now()
		}
		if time.Since(quiet) > 8*time.Second {
			client.Close()
			t.Fatalf("the target's traffic stopped at %d bytes for 8s and the proxy did not close the connection, with an idle timeout of %s", n, idle)
		}
	}
	client.Close()
	e, ok := waitEvent(ev, closed)
	if !ok {
		t.Fatal("no close event")
	}
	// crypto/tls's Close gives its close_notify to a peer that does not
	// read five seconds.
	if took := time.Since(quiet); took > idle+7*time.Second {
		t.Errorf("closed %s after the target's last byte, want within the idle timeout %s and close_notify's 5 s", took, idle)
	}
	if !strings.Contains(e.Reason, "idle") {
		t.Errorf("close event %+v, want the idle timeout as its reason", e)
	}
	t.Logf("closed %s after the target's last byte (%d bytes): %s", time.Since(quiet).Round(time.Millisecond), n, e.Reason)
}

// smallSendBuffers listens on loopback, with small send buffers
// (tls13raw.SmallSendBuffers).
func smallSendBuffers(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return tls13raw.SmallSendBuffers(ln)
}

// keyUpdateFlood connects to addr with TLS 1.3 and a small receive
// buffer, then, never reading, sends lines with fifteen key updates
// before each, until its writes fail or 8192 lines were sent.
func keyUpdateFlood(t *testing.T, addr string) net.Conn {
	t.Helper()
	raw, w, err := tls13raw.Dial(addr)
	if errors.Is(err, tls13raw.ErrCipherSuite) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	go func() {
		if _, err := w.FloodLines(raw, 1<<13); err != nil {
			t.Error(err)
		}
	}()
	return raw
}

// TestRevokedWhileBlockedByKeyUpdates: the key-update flood above from a
// client whose pin is then removed, with no idle timeout. A revocation
// closes the connection within a second or two; it used to wait for ever:
// closing the TLS session sends a close_notify, which waited for the lock
// of the key update's write, blocked on a client that does not read.
func TestRevokedWhileBlockedByKeyUpdates(t *testing.T) {
	var got countingEcho
	back := startBackend(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		c.SetDeadline(time.Now().Add(60 * time.Second))
		io.Copy(&got, c) // silent: the proxy has no write of its own under way
	})
	revokes := make(chan func(error), 1)
	ev := &events{}
	addr, _ := runOn(t, proxy.Config{Mode: proxy.ServerMode, TLS: pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{}),
		Target: back.addr, OnEvent: ev.on,
		Recheck: func(_ tls.ConnectionState, _ string, _ time.Time, revoke func(error)) func() {
			revokes <- revoke
			return func() {}
		}}, smallSendBuffers(t))
	keyUpdateFlood(t, addr)
	revoke := <-revokes
	// Until the proxy is stuck: the target gets nothing new for a second.
	n, quiet := int64(-1), time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Since(quiet) < time.Second; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the flood never stalled the proxy")
		}
		if m := got.n.Load(); m != n {
			n, quiet = m, time.Now()
		}
	}
	at := time.Now()
	revoke(errors.New("pin removed"))
	e, ok := waitEvent(ev, func(e proxy.Event) bool { return e.Kind == proxy.EventClosed })
	if !ok {
		t.Fatalf("the revoked connection was not closed within 5 s (the target got %d bytes)", got.n.Load())
	}
	if e.By != server.RejectedByUs {
		t.Errorf("close event %+v, want by %q", e, server.RejectedByUs)
	}
	t.Logf("closed %s after the revocation: %s", time.Since(at).Round(time.Millisecond), e.Reason)
}
