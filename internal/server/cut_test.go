package server_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/server"
)

// TestCutConnectionsEndWithAnError: a connection serve ends itself while
// its client is still sending (evicted to make room, shutdown grace
// over, the client revoked) was closed with a close_notify-less FIN,
// which crypto/tls, at a record boundary, takes for a clean end: the
// client, reading to EOF, saw its stream end as if whole, though what it
// sent after is never printed. It now sees an error (a reset).
func TestCutConnectionsEndWithAnError(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*server.Config, chan func(error))
		cut  func(t *testing.T, ts *testServer, revoke chan func(error))
	}{
		{"evicted", func(c *server.Config, _ chan func(error)) { c.MaxConns = 1 },
			func(t *testing.T, ts *testServer, _ chan func(error)) {
				c, err := dial(t, ts.addr, nil)
				if err == nil {
					t.Cleanup(func() { c.Close() })
				}
			}},
		{"shutdown grace over", func(c *server.Config, _ chan func(error)) { c.GracePeriod = 100 * time.Millisecond },
			func(t *testing.T, ts *testServer, _ chan func(error)) { ts.stop() }},
		{"revoked", func(c *server.Config, revoke chan func(error)) {
			c.Recheck = func(_ tls.ConnectionState, _ string, _ time.Time, r func(error)) func() {
				revoke <- r
				return func() {}
			}
		}, func(t *testing.T, ts *testServer, revoke chan func(error)) { (<-revoke)(errors.New("pin removed")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			revoke := make(chan func(error), 4)
			cfg := server.Config{TLS: pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{})}
			tt.cfg(&cfg, revoke)
			ts := start(t, cfg)
			c, err := dial(t, ts.addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "a line\n")
			ts.rec.waitFor(t, 10*time.Second, func(e server.Event) bool { return e.Kind == server.EventData && e.Conn == 1 })
			read := make(chan error, 1)
			go func() {
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				_, err := io.Copy(io.Discard, c)
				read <- err
			}()
			tt.cut(t, ts, revoke)
			err = <-read
			var ne net.Error
			if err == nil || errors.Is(err, io.EOF) || errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("the cut client's read to the end: %v, want an error (a reset)", err)
			}
		})
	}
}
