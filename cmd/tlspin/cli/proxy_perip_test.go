package cli_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/wait"
)

// tlsEcho serves an echo over TLS with the key pair in file on loopback
// until the test ends.
func tlsEcho(t *testing.T, file string) string {
	t.Helper()
	pair, err := certs.LoadKeyPair(file, "")
	if err != nil {
		t.Fatal(err)
	}
	return e2e.ServeTLS(t, pair, func(c *tls.Conn) { io.Copy(c, c) })
}

// TestProxyPerIPCap: `proxy client` serves a local program however many
// connections it opens (its clients all come from loopback: a per-address
// cap would reset a pool's connections at random), unless
// --max-conns-per-ip says otherwise; `proxy server` keeps its cap of 32.
// A refusal is a warning.
func TestProxyPerIPCap(t *testing.T) {
	dir := t.TempDir()
	srvFile, srvPin := identityFile(t, dir, "server")
	target := tlsEcho(t, srvFile)
	tests := []struct {
		name   string
		args   []string
		tls    bool // the proxy speaks TLS to its clients (server mode)
		conns  int
		served int // of conns, echoed (client mode) or held (server mode)
	}{
		{"proxy client, default", []string{"client", "--target", target, "--verifier", "spkipin", "--pin", srvPin}, false, 40, 40},
		// A pool opening more connections at once than a server lets
		// handshake at once (64): none is closed to make room.
		{"proxy client, a burst", []string{"client", "--target", target, "--verifier", "spkipin", "--pin", srvPin}, false, 150, 150},
		{"proxy client, --max-conns-per-ip 3", []string{"client", "--target", target, "--verifier", "spkipin", "--pin", srvPin, "--max-conns-per-ip", "3"}, false, 5, 3},
		{"proxy server, default", []string{"server", "--target", "127.0.0.1:1", "--cert", srvFile}, true, 33, 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prx, addr := startProxy(t, append(tt.args, "--listen", "127.0.0.1:0")...)
			var conns []net.Conn
			resetAtConnect := 0 // refused, and reset before connect returned
			for range tt.conns {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if errors.Is(err, syscall.ECONNRESET) {
					resetAtConnect++
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				conns = append(conns, c)
			}
			refused := tt.conns - tt.served
			warned := func() int { return strings.Count(prx.stderr.String(), "too many connections from this address") }
			if refused > 0 && !wait.Until(10*time.Second, func() bool { return warned() > 0 }) {
				t.Fatalf("%d refused without a warning:\n%s", refused, prx.stderr)
			}
			// A refused connection is closed at once; a held one in server
			// mode waits for our ClientHello, so its read times out.
			held := time.Now().Add(500 * time.Millisecond)
			ok := make(chan bool, len(conns))
			for i, c := range conns {
				go func() {
					c.SetDeadline(time.Now().Add(10 * time.Second))
					if tt.tls {
						c.SetReadDeadline(held)
						_, err := c.Read(make([]byte, 1))
						ne, timeout := err.(net.Error)
						ok <- timeout && ne.Timeout()
						return
					}
					msg := fmt.Sprintf("ping %d\n", i)
					io.WriteString(c, msg)
					got, err := bufio.NewReader(c).ReadString('\n')
					ok <- err == nil && got == msg
				}()
			}
			served := 0
			for range conns {
				if <-ok {
					served++
				}
			}
			if resetAtConnect > refused {
				t.Errorf("%d connections reset at connect, more than the %d to refuse", resetAtConnect, refused)
			}
			if served != tt.served {
				t.Errorf("%d of %d connections served, want %d", served, tt.conns, tt.served)
			}
			if refused > 0 {
				if !regexp.MustCompile(`(?m)\[WARN\].*too many connections from this address`).MatchString(prx.stderr.String()) {
					t.Errorf("the refusal is not a warning:\n%s", prx.stderr)
				}
			} else if n := warned(); n != 0 {
				t.Errorf("%d refusals logged, want none:\n%s", n, prx.stderr)
			}
		})
	}
}
