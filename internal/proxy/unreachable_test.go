package proxy_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/proxy"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestUnreachableTargetWarningsAreBounded: while the target is down (a
// restart, an outage), every connection fails to reach it; a program
// that retries at once (a pool, a health check) must not write a
// warning each to a long-running proxy's log. Every connection is still
// an event.
func TestUnreachableTargetWarningsAreBounded(t *testing.T) {
	const conns = 150
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := down.Addr().String()
	down.Close()
	good, srv := newCert(t, "good"), newCert(t, "server")
	tests := []struct {
		name    string
		cfg     proxy.Config
		connect func(addr string) error
	}{
		{"client mode", proxy.Config{
			Mode: proxy.ClientMode,
			TLS:  pintls.ClientConfig(pinDecider{allow: srv.Leaf.Raw}, "", target, nil, pintls.Options{Timeout: time.Second}),
		}, func(addr string) error {
			// The local client is reset (maybe before connect returns):
			// a FIN would pass for an empty, complete stream.
			c, err := net.Dial("tcp", addr)
			if errors.Is(err, syscall.ECONNRESET) {
				return nil
			}
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = io.Copy(io.Discard, c)
			if errors.Is(err, syscall.ECONNRESET) {
				return nil
			}
			return fmt.Errorf("local client's read: %v, want a reset", err)
		}},
		{"server mode", proxy.Config{
			Mode: proxy.ServerMode,
			TLS:  pintls.ServerConfig(srv, pinDecider{allow: good.Leaf.Raw}, pintls.Options{Timeout: time.Second}),
		}, func(addr string) error {
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{good}})
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c)
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out syncbuf.Buffer
			ev := &events{}
			cfg := tt.cfg
			cfg.Target, cfg.OnEvent = target, ev.on
			cfg.Log = hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info})
			cfg.Limits.MaxConnsPerIP = -1
			addr, _ := run(t, cfg)
			began := time.Now()
			for range conns {
				if err := tt.connect(addr); err != nil {
					t.Fatal(err)
				}
			}
			count := func() int {
				ev.mu.Lock()
				defer ev.mu.Unlock()
				return len(ev.all)
			}
			if !wait.Until(10*time.Second, func() bool { return count() >= conns }) {
				t.Fatalf("%d events for %d connections", count(), conns)
			}
			took := time.Since(began)
			warnings := strings.Count(out.String(), "[WARN]")
			if limit := 10 * (int(took/time.Second) + 1); warnings > limit {
				t.Errorf("%d warnings for %d connections to a target that is down, in %s; want at most %d", warnings, conns, took.Round(time.Millisecond), limit)
			}
			if !strings.Contains(out.String(), "target unreachable") {
				t.Errorf("the unreachable target is not warned about:\n%s", out.String())
			}
		})
	}
}
