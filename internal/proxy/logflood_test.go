package proxy_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/proxy"
	"github.com/tlspin/tlspin/internal/server"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestAFloodDoesNotHideARejection: handshakes that fail cheaply (bytes
// that are not TLS, from a client, or from a target a man-in-the-middle
// answers for) must not use up the warnings about peers our verifiers
// rejected: each kind has its own bound. They shared one, and eleven
// failures sent the next rejection, in the same second, to debug level.
func TestAFloodDoesNotHideARejection(t *testing.T) {
	const flood = 30
	good, srv, forged := newCert(t, "good"), newCert(t, "server"), newCert(t, "forged")
	notTLS := func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "HTTP/1.0 400 Bad Request\r\n\r\n")
	}
	// A target that does not speak TLS for flood connections, then
	// presents a certificate nobody pinned.
	var served atomic.Int64
	mitm := startBackend(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		if served.Add(1) <= flood {
			notTLS(c)
			return
		}
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{forged}})
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		tc.Handshake()
	})
	plain := func(addr string) {
		c, err := net.Dial("tcp", addr)
		if errors.Is(err, syscall.ECONNRESET) {
			return // the target was rejected: the local client is reset
		}
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c)
	}
	for _, tt := range []struct {
		name         string
		cfg          proxy.Config
		flood, rejct func(addr string)
		want         string
	}{
		{"server mode, clients not TLS", proxy.Config{
			Mode:   proxy.ServerMode,
			Target: startBackend(t, "tcp", "127.0.0.1:0", func(net.Conn) {}).addr,
			TLS:    pintls.ServerConfig(srv, pinDecider{allow: good.Leaf.Raw}, pintls.Options{Timeout: time.Second}),
		}, func(addr string) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			notTLS(c)
			io.Copy(io.Discard, c)
		}, func(addr string) {
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{forged}})
			if err == nil {
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.Copy(io.Discard, c)
				c.Close()
			}
		}, "we rejected the client"},
		{"client mode, target not TLS", proxy.Config{
			Mode:   proxy.ClientMode,
			Target: mitm.addr,
			TLS:    pintls.ClientConfig(pinDecider{allow: srv.Leaf.Raw}, "", mitm.addr, nil, pintls.Options{Timeout: time.Second}),
		}, plain, plain, "we rejected the target"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out syncbuf.Buffer
			ev := &events{}
			cfg := tt.cfg
			cfg.OnEvent = ev.on
			cfg.Log = hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info})
			cfg.Limits.MaxConnsPerIP = -1
			addr, _ := run(t, cfg)
			count := func() int {
				ev.mu.Lock()
				defer ev.mu.Unlock()
				return len(ev.all)
			}
			for range flood {
				tt.flood(addr)
			}
			if !wait.Until(5*time.Second, func() bool { return count() >= flood }) {
				t.Fatalf("%d events for %d connections", count(), flood)
			}
			tt.rejct(addr)
			if !wait.Until(5*time.Second, func() bool { return count() >= flood+1 }) {
				t.Fatalf("%d events for %d connections", count(), flood+1)
			}
			var warned bool
			for line := range strings.Lines(out.String()) {
				if strings.Contains(line, "[WARN]") && strings.Contains(line, tt.want) {
					warned = true
				}
			}
			if !warned {
				t.Errorf("after %d failed handshakes, no warning %q:\n%s", flood, tt.want, out.String())
			}
		})
	}
}

// TestOneClientDoesNotHideAnother: in ServerMode, a client who completes
// handshakes we reject (a junk certificate) must not push the rejections
// of other clients to debug level: each source has a share of the bound.
// Thirty such handshakes from one address sent the next rejection, from
// another address in the same second, to debug level.
func TestOneClientDoesNotHideAnother(t *testing.T) {
	const flood = 30
	good, srv, junk, other := newCert(t, "good"), newCert(t, "server"), newCert(t, "junk"), newCert(t, "other")
	var out syncbuf.Buffer
	ev := &events{}
	addr, _ := run(t, proxy.Config{
		Mode:    proxy.ServerMode,
		Target:  startBackend(t, "tcp", "127.0.0.1:0", func(net.Conn) {}).addr,
		TLS:     pintls.ServerConfig(srv, pinDecider{allow: good.Leaf.Raw}, pintls.Options{Timeout: time.Second}),
		OnEvent: ev.on,
		Log:     hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info}),
		Limits:  server.Limits{MaxConnsPerIP: -1},
	})
	e2e.FloodFrom(t, "127.0.0.1", addr, junk, flood)
	e2e.HandshakeFrom(t, "127.0.0.2", addr, other)
	count := func() int {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		return len(ev.all)
	}
	if !wait.Until(5*time.Second, func() bool { return count() >= flood+1 }) {
		t.Fatalf("%d events for %d connections", count(), flood+1)
	}
	var warned bool
	for line := range strings.Lines(out.String()) {
		if strings.Contains(line, "[WARN]") && strings.Contains(line, "remote=127.0.0.2:") && strings.Contains(line, "we rejected the client") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("after %d rejections from 127.0.0.1, the client rejected from 127.0.0.2 was not warned about:\n%s", flood, out.String())
	}
}
