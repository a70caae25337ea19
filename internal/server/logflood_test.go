package server_test

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/internal/e2e"
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
		"not TLS": func() error { return notTLS(ts.addr) },
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
	rejections := func() int { return ts.rec.count(server.EventReject) }
	if !wait.Until(10*time.Second, func() bool { return rejections() == len(clients)*each }) {
		t.Fatalf("%d rejection events, want %d", rejections(), len(clients)*each)
	}
	took := time.Since(began)
	warnings := strings.Count(out.String(), "[WARN]")
	// Ten a second for each kind the clients cause (closed early, not
	// TLS, rejected), in every second begun.
	if limit := len(clients) * warnBurst * (int(took/time.Second) + 1); warnings > limit {
		t.Errorf("%d warnings for %d failed handshakes in %s, want at most %d", warnings, len(clients)*each, took.Round(time.Millisecond), limit)
	}
}

// TestAFloodDoesNotHideARejection: what anyone who can connect causes
// cheaply (bytes that are not TLS, a client that refuses our certificate)
// must not use up the warnings about clients our verifiers rejected, the
// ones an operator watches for (a forged or stolen certificate, a verifier
// that failed): each kind has its own bound. They shared one: eleven
// connections that did not speak TLS sent the next rejection, in the same
// second, to debug level.
func TestAFloodDoesNotHideARejection(t *testing.T) {
	good, bad := newCert(t, "good"), newCert(t, "bad")
	for _, tt := range []struct {
		name  string
		flood func(addr string) error
	}{
		{"not TLS", notTLS},
		{"refuses our certificate", func(addr string) error {
			// Verifies our self-signed certificate against the system's
			// roots: it sends an alert.
			c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "127.0.0.1", Certificates: []tls.Certificate{good}})
			if err == nil {
				c.Close()
			}
			return nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const flood = 3 * warnBurst
			var out syncbuf.Buffer
			log := hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info})
			ts := start(t, server.Config{TLS: mtlsConfig(t, good), Log: log, MaxConnsPerIP: -1})
			rejections := func() int { return ts.rec.count(server.EventReject) }
			for range flood {
				if err := tt.flood(ts.addr); err != nil {
					t.Fatal(err)
				}
			}
			if !wait.Until(5*time.Second, func() bool { return rejections() == flood }) {
				t.Fatalf("%d rejection events, want %d", rejections(), flood)
			}
			send(t, ts.addr, &bad, "never printed\n")
			if !wait.Until(5*time.Second, func() bool { return rejections() == flood+1 }) {
				t.Fatalf("%d rejection events, want %d", rejections(), flood+1)
			}
			var warned bool
			for line := range strings.Lines(out.String()) {
				if strings.Contains(line, "[WARN]") && strings.Contains(line, "client rejected by us") && strings.Contains(line, sha(bad.Leaf.Raw)) {
					warned = true
				}
			}
			if !warned {
				t.Errorf("after %d connections %s, the rejected client was not warned about:\n%s", flood, tt.name, out.String())
			}
		})
	}
}

// TestOneSourceDoesNotHideAnother: an attacker who completes handshakes
// that our verifiers reject (a junk certificate) must not push the
// rejections of other clients to debug level: each source has a share of
// the bound. Thirty such handshakes from one address sent the next
// rejection, from another address in the same second, to debug level.
func TestOneSourceDoesNotHideAnother(t *testing.T) {
	const flood = 3 * warnBurst
	good, junk, other := newCert(t, "good"), newCert(t, "junk"), newCert(t, "other")
	var out syncbuf.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info})
	ts := start(t, server.Config{TLS: mtlsConfig(t, good), Log: log, MaxConnsPerIP: -1})
	rejections := func() int { return ts.rec.count(server.EventReject) }
	e2e.FloodFrom(t, "127.0.0.1", ts.addr, junk, flood)
	e2e.HandshakeFrom(t, "127.0.0.2", ts.addr, other)
	if !wait.Until(5*time.Second, func() bool { return rejections() == flood+1 }) {
		t.Fatalf("%d rejection events, want %d", rejections(), flood+1)
	}
	warned := map[string]int{}
	for line := range strings.Lines(out.String()) {
		if strings.Contains(line, "[WARN]") && strings.Contains(line, "client rejected by us") {
			for _, c := range []tls.Certificate{junk, other} {
				if strings.Contains(line, sha(c.Leaf.Raw)) {
					warned[c.Leaf.Subject.CommonName]++
				}
			}
		}
	}
	if warned["other"] != 1 {
		t.Errorf("after %d rejections from 127.0.0.1, the client rejected from 127.0.0.2 was warned about %d times, want once:\n%s", flood, warned["other"], out.String())
	}
	if warned["junk"] == 0 || warned["junk"] > flood/warnBurst+1 {
		t.Errorf("%d warnings about the flood's %d rejections, want one to %d (one a second)", warned["junk"], flood, flood/warnBurst+1)
	}
}

// warnBurst is the server's bound on each kind of warning a second.
const warnBurst = 10

// notTLS connects to addr, sends an HTTP request instead of a
// ClientHello, and reads until the server closes.
func notTLS(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	io.Copy(io.Discard, c)
	return nil
}
