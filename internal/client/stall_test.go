package client_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/client"
	"github.com/tlspin/tlspin/internal/e2e"
)

// TestHandshakeGivesUpOnAStallingServer is the attack of a server (or a
// man-in-the-middle) that holds the client in its handshake: one that
// reads the ClientHello and answers nothing, and one that trickles a
// record a byte at a time, each byte well within any per-read timeout.
// The timeout bounds the whole handshake, not each read.
func TestHandshakeGivesUpOnAStallingServer(t *testing.T) {
	for _, tt := range []struct {
		name   string
		handle func(net.Conn)
	}{
		{"silent", func(c net.Conn) { io.Copy(io.Discard, c) }},
		{"trickling", func(c net.Conn) {
			go io.Copy(io.Discard, c)
			// A handshake record header, then its body, never ending.
			for _, b := range append([]byte{22, 3, 3, 0x40, 0}, make([]byte, 1<<14)...) {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := e2e.Serve(t, ln, tt.handle)
			const timeout = 300 * time.Millisecond
			start := time.Now()
			conn, err := client.Dial(context.Background(), addr, &tls.Config{InsecureSkipVerify: true}, timeout)
			if err == nil {
				conn.Close()
				t.Fatal("the handshake succeeded")
			}
			if d := time.Since(start); d > timeout+2*time.Second {
				t.Errorf("gave up after %s, want about %s", d, timeout)
			}
			if !strings.Contains(err.Error(), "did not finish within") {
				t.Errorf("error %q does not say the handshake timed out", err)
			}
		})
	}
}
