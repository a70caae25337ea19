package server_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/server"
	"github.com/tlspin/tlspin/internal/tls13raw"
)

// TestKeyUpdateFloodDoesNotOutliveIdleTimeout: a TLS 1.3 client that
// never reads asks for key updates, each answered by a record the server
// writes from inside its read, until the server's writes block; then it
// goes quiet. --idle-timeout must still close it: a read deadline alone
// does not end a write blocked inside a read, and the connection used to
// be held (its goroutine and descriptor) until evicted.
func TestKeyUpdateFloodDoesNotOutliveIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	cfg := pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := startOn(t, server.Config{TLS: cfg, IdleTimeout: idle}, tls13raw.SmallSendBuffers(ln))

	raw, w, err := tls13raw.Dial(ts.addr)
	if errors.Is(err, tls13raw.ErrCipherSuite) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Write(w.Record([]byte("hello\n"), tls13raw.ApplicationData)); err != nil {
		t.Fatal(err)
	}
	ts.rec.waitFor(t, 5*time.Second, func(e server.Event) bool { return e.Kind == server.EventData })

	// Fifteen key updates, then a line, never reading the answers, until the
	// server stops reading: it is stuck writing its answers to us.
	flooded := make(chan int, 1)
	go func() {
		sent, err := w.FloodLines(raw, 1<<13)
		if err != nil {
			t.Error(err)
		}
		flooded <- sent
	}()
	// Wait for the server to print nothing new for a while, then for
	// the close: within about the idle timeout of the last line.
	lines, quiet := -1, time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(idle / 10) {
		if ts.rec.count(server.EventClose) > 0 {
			break
		}
		if n := ts.rec.count(server.EventData); n != lines {
			lines, quiet = n, time.Now()
		}
		if time.Since(quiet) > 10*idle {
			raw.Close()
			t.Fatalf("the server printed nothing for %s (%d lines) and did not close the connection, with an idle timeout of %s", 10*idle, lines, idle)
		}
	}
	raw.Close()
	t.Logf("%d batches of key updates sent, %d lines printed", <-flooded, ts.rec.count(server.EventData))
	e := ts.rec.waitFor(t, time.Second, func(e server.Event) bool { return e.Kind == server.EventClose })
	if !strings.Contains(e.Reason, "idle") {
		t.Errorf("close event %+v, want the idle timeout as its reason", e)
	}
	t.Logf("closed %s after the last line: %s", time.Since(quiet).Round(time.Millisecond), e.Reason)
}
