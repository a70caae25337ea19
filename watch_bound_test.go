package tlspin_test

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestShortConnectionsAreNotKept: a client that opens and closes
// connections through Dial or Listen while no policy changes must not
// grow what the watch holds: the closed ones are dropped without being
// told (their *tls.Conn closed).
func TestShortConnectionsAreNotKept(t *testing.T) {
	srv, cli := newIdentity("server"), newIdentity("client")
	const n = 400
	for _, listen := range []bool{true, false} {
		name := "Dial"
		if listen {
			name = "Listen"
		}
		t.Run(name, func(t *testing.T) {
			pin := strings.TrimPrefix(srv.spki, "sha256//")
			if listen {
				pin = strings.TrimPrefix(cli.spki, "sha256//")
			}
			v := start(t, []string{"spkipin:pin=" + pin})
			echo := func(c net.Conn) { io.Copy(c, c) }
			var dial func() (net.Conn, error)
			if listen {
				ln, err := v.Listen("tcp", "127.0.0.1:0", srv.cert)
				if err != nil {
					t.Fatal(err)
				}
				addr := e2e.Serve(t, ln, echo)
				dial = func() (net.Conn, error) {
					return tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cli.cert}})
				}
			} else {
				ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srv.cert}})
				if err != nil {
					t.Fatal(err)
				}
				addr := e2e.Serve(t, ln, echo)
				dial = func() (net.Conn, error) { return v.Dial(t.Context(), "tcp", addr) }
			}
			for range n {
				c, err := dial()
				if err != nil {
					t.Fatal(err)
				}
				// A round trip: Listen's side has returned the connection.
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(c, "x"); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
					t.Fatal(err)
				}
				c.Close()
			}
			// Bounded by twice the open ones, plus the least that makes
			// Add look (64): none is open.
			if !wait.Until(5*time.Second, func() bool { return tlspin.WatchLen(v) <= 2*64 }) {
				t.Fatalf("%d connections watched after %d closed, none open", tlspin.WatchLen(v), n)
			}
		})
	}
}
