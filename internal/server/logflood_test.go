package server_test

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/internal/server"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestFailedHandshakeWarningsAreBounded: anyone who can connect causes a
// failed handshake; a flood of them (health checks that close at once,
// clients that do not speak TLS, rejected certificates) must not write a
// warning each, for months, to a long-running server's log. The proxy
// keeps them to ten a second; so does serve, every connection still
// reported as an event.
func TestFailedHandshakeWarningsAreBounded(t *testing.T) {
	const each = 100
	good, bad := newCert(t, "good"), newCert(t, "bad")
	var out syncbuf.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info})
	ts := start(t, server.Config{TLS: mtlsConfig(t, good), Log: log, MaxConnsPerIP: -1})
	clients := map[string]func() error{
		"closes at once": func() error {
			c, err := net.Dial("tcp", ts.addr)
			if err == nil {
				c.Close()
			}
			return err
		},
		"not TLS": func() error {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
			io.Copy(io.Discard, c)
			return nil
		},
		"rejected certificate": func() error {
			send(t, ts.addr, &bad, "never printed\n")
			return nil
		},
	}
	began := time.Now()
	var wg sync.WaitGroup
	for name, client := range clients {
		wg.Go(func() {
			for range each {
				if err := client(); err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	rejections := func() int {
		n := 0
		for _, e := range ts.rec.all() {
			if e.Kind == server.EventReject {
				n++
			}
		}
		return n
	}
	if !wait.Until(10*time.Second, func() bool { return rejections() == len(clients)*each }) {
		t.Fatalf("%d rejection events, want %d", rejections(), len(clients)*each)
	}
	took := time.Since(began)
	warnings := strings.Count(out.String(), "[WARN]")
	// Ten a second for failed handshakes, ten for clients that closed
	// early, in every second begun.
	if limit := 2 * 10 * (int(took/time.Second) + 1); warnings > limit {
		t.Errorf("%d warnings for %d failed handshakes in %s, want at most %d", warnings, len(clients)*each, took.Round(time.Millisecond), limit)
	}
}
