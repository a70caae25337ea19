package proxy_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/proxy"
)

// cutHarness is one proxied connection, open both ways, for a cause to
// cut.
type cutHarness struct {
	t      *testing.T
	mode   proxy.Mode
	addr   string
	stop   context.CancelFunc // ends the proxy's Serve context
	revoke chan func(error)   // the Recheck's revoke of each connection
	backs  chan error         // what each target connection's read to EOF returned
	srv    tls.Certificate    // the target's certificate in client mode
	dialer func() (net.Conn, error)
}

// readToEnd reads c to its end in the background; the channel gets what
// ended it (nil for a clean end).
func readToEnd(c net.Conn) <-chan error {
	done := make(chan error, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := io.Copy(io.Discard, c)
		done <- err
	}()
	return done
}

// wantError fails t unless err, what a peer's read to the end of its
// stream returned, is an error other than a timeout: a clean end (nil,
// io.EOF) would let the peer take a cut stream for a whole one.
func wantError(t *testing.T, who string, errc <-chan error) {
	t.Helper()
	select {
	case err := <-errc:
		var ne net.Error
		switch {
		case err == nil, errors.Is(err, io.EOF):
			t.Errorf("%s: the cut connection ended cleanly (%v), want an error (a reset)", who, err)
		case errors.As(err, &ne) && ne.Timeout():
			t.Errorf("%s: not cut within 20s", who)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s: still reading after 30s", who)
	}
}

// TestCutConnectionsEndWithAnError: a connection the proxy ends itself,
// mid-stream (shutdown grace over, the peer revoked, evicted, idle,
// refused for its address) or before a byte passed (the target
// unreachable or rejected), used to be closed with a FIN (or
// close_notify), which a peer reading to EOF takes for a clean end of a
// complete stream. Each peer now sees an error: a reset.
func TestCutConnectionsEndWithAnError(t *testing.T) {
	tests := []struct {
		name   string
		modes  []proxy.Mode
		target string // "live", "down" or "rejecting"
		cfg    func(*proxy.Config)
		// cut ends the connection established; it returns the read of
		// the local peer to check instead of the first one's, if any.
		cut func(h *cutHarness) <-chan error
	}{
		{"shutdown grace over", []proxy.Mode{proxy.ServerMode, proxy.ClientMode}, "live",
			func(c *proxy.Config) { c.Limits.GracePeriod = 100 * time.Millisecond },
			func(h *cutHarness) <-chan error { h.stop(); return nil }},
		{"revoked", []proxy.Mode{proxy.ServerMode, proxy.ClientMode}, "live", nil,
			func(h *cutHarness) <-chan error {
				(<-h.revoke)(errors.New("pin removed"))
				return nil
			}},
		{"idle", []proxy.Mode{proxy.ServerMode, proxy.ClientMode}, "live",
			func(c *proxy.Config) { c.IdleTimeout = 300 * time.Millisecond },
			func(h *cutHarness) <-chan error { return nil }},
		{"evicted", []proxy.Mode{proxy.ServerMode, proxy.ClientMode}, "live",
			func(c *proxy.Config) { c.Limits.MaxConns = 1 },
			func(h *cutHarness) <-chan error {
				c, err := h.dialer()
				if err == nil {
					h.t.Cleanup(func() { c.Close() })
				}
				return nil
			}},
		{"refused per IP", []proxy.Mode{proxy.ServerMode, proxy.ClientMode}, "live",
			func(c *proxy.Config) { c.Limits.MaxConnsPerIP = 1 },
			func(h *cutHarness) <-chan error {
				c, err := h.dialer()
				if err != nil {
					errc := make(chan error, 1)
					errc <- err
					return errc
				}
				h.t.Cleanup(func() { c.Close() })
				return readToEnd(c)
			}},
		{"target unreachable", []proxy.Mode{proxy.ServerMode, proxy.ClientMode}, "down", nil, nil},
		{"target rejected", []proxy.Mode{proxy.ClientMode}, "rejecting", nil, nil},
	}
	for _, tt := range tests {
		for _, mode := range tt.modes {
			name := tt.name + "/server_mode"
			if mode == proxy.ClientMode {
				name = tt.name + "/client_mode"
			}
			t.Run(name, func(t *testing.T) {
				h := &cutHarness{t: t, mode: mode, revoke: make(chan func(error), 4), backs: make(chan error, 4), srv: newCert(t, "server")}
				established := make(chan struct{}, 4)
				handle := func(c net.Conn) {
					c.SetDeadline(time.Now().Add(20 * time.Second))
					if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
						h.backs <- err
						return
					}
					established <- struct{}{}
					_, err := io.Copy(io.Discard, c)
					h.backs <- err
				}
				var target string
				switch {
				case tt.target == "down":
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						t.Fatal(err)
					}
					target = ln.Addr().String()
					ln.Close()
				case mode == proxy.ServerMode:
					target = startBackend(t, "tcp", "127.0.0.1:0", handle).addr
				default:
					cert := h.srv
					if tt.target == "rejecting" {
						cert = newCert(t, "another server")
					}
					target = tlsServer(t, cert, func(c *tls.Conn) { handle(c) })
				}
				cfg := proxy.Config{Mode: mode, Target: target}
				cfg.Recheck = func(_ tls.ConnectionState, _ string, _ time.Time, revoke func(error)) func() {
					h.revoke <- revoke
					return func() {}
				}
				if mode == proxy.ServerMode {
					cfg.TLS = pintls.ServerConfig(h.srv, nil, pintls.Options{})
					h.dialer = func() (net.Conn, error) {
						d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}}
						return d.Dial("tcp", h.addr)
					}
				} else {
					cfg.TLS = pintls.ClientConfig(pinDecider{allow: h.srv.Leaf.Raw}, "", target, nil, pintls.Options{Timeout: time.Second})
					h.dialer = func() (net.Conn, error) { return net.Dial("tcp", h.addr) }
				}
				if tt.cfg != nil {
					tt.cfg(&cfg)
				}
				p, err := proxy.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				h.addr = ln.Addr().String()
				ctx, stop := context.WithCancel(context.Background())
				h.stop = stop
				served := make(chan error, 1)
				go func() { served <- p.Serve(ctx, ln) }()
				t.Cleanup(func() { stop(); <-served })

				c, err := h.dialer()
				if err != nil && tt.target != "live" {
					// Reset before connect returned: an error too.
					errc := make(chan error, 1)
					errc <- err
					wantError(t, "the client", errc)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if tt.target != "live" {
					// Nothing written: a socket closed with unread bytes
					// is reset anyway.
					wantError(t, "the client", readToEnd(c))
					return
				}
				if _, err := c.Write([]byte("hello")); err != nil {
					t.Fatal(err)
				}
				select {
				case <-established:
				case err := <-h.backs:
					t.Fatalf("the target did not get the first bytes: %v", err)
				case <-time.After(20 * time.Second):
					t.Fatal("the target did not get the first bytes")
				}
				first := readToEnd(c)
				if other := tt.cut(h); other != nil {
					wantError(t, "the refused client", other)
					return
				}
				wantError(t, "the client", first)
				wantError(t, "the target", h.backs)
			})
		}
	}
}
