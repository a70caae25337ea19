package server_test

import (
	"crypto/tls"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/server"
)

// TestUnterminatedDataIsMarked: a man-in-the-middle who injects a TCP
// reset in the middle of a client's line (or serve cutting the
// connection: idle, evicted, revoked, shutdown) had serve emit the half
// line as data, as it emits the whole lines before it: a program reading
// serve's events, whose protocol ends each message with a newline, could
// not tell "transfer 100 to al" cut short from a line the client ended.
// Data that no newline ended (the half line of a cut or of a stream that
// ended without one, each piece of a line over MaxLine but its last) is
// now marked Unterminated.
func TestUnterminatedDataIsMarked(t *testing.T) {
	type line struct {
		data         string
		unterminated bool
	}
	for _, tt := range []struct {
		name    string
		maxLine int
		// end ends the client's connection, whose raw socket is raw.
		end  func(c *tls.Conn, raw *net.TCPConn)
		send string
		want []line
	}{
		{"reset mid-line", 0, func(_ *tls.Conn, raw *net.TCPConn) { raw.SetLinger(0); raw.Close() },
			"whole\ntransfer 100 to al", []line{{"whole", false}, {"transfer 100 to al", true}}},
		{"ended without a newline", 0, func(c *tls.Conn, _ *net.TCPConn) { c.CloseWrite() },
			"whole\nlast", []line{{"whole", false}, {"last", true}}},
		{"ended after a newline", 0, func(c *tls.Conn, _ *net.TCPConn) { c.CloseWrite() },
			"whole\nlast\n", []line{{"whole", false}, {"last", false}}},
		{"a line longer than MaxLine", 8, func(c *tls.Conn, _ *net.TCPConn) { c.CloseWrite() },
			"0123456789AB\n", []line{{"01234567", true}, {"89AB", false}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, server.Config{TLS: pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{}), MaxLine: tt.maxLine})
			raw, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, tt.send); err != nil {
				t.Fatal(err)
			}
			// The first line printed, the rest is in the server's hands:
			// only then is the connection ended.
			ts.rec.waitFor(t, 10*time.Second, func(e server.Event) bool { return e.Kind == server.EventData })
			tt.end(c, raw.(*net.TCPConn))
			ts.rec.waitFor(t, 10*time.Second, func(e server.Event) bool { return e.Kind == server.EventClose })
			var got []line
			for _, e := range ts.rec.all() {
				if e.Kind == server.EventData {
					got = append(got, line{string(e.Data), e.Unterminated})
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("data (line, unterminated): %v, want %v", got, tt.want)
			}
		})
	}
}
