package cli_test

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestProxyRejectionHintNamesProxy: a pin mismatch's hint says how to
// trust the peer; under proxy it named the command of another (tlspin
// serve, tlspin send), which a user copying it would run by mistake.
func TestProxyRejectionHintNamesProxy(t *testing.T) {
	dir := t.TempDir()
	srvFile, _ := identityFile(t, dir, "server")
	cliFile, _ := identityFile(t, dir, "client")
	_, otherPin := identityFile(t, dir, "other")
	srvCert, err := tls.LoadX509KeyPair(srvFile, srvFile)
	if err != nil {
		t.Fatal(err)
	}
	cliCert, err := tls.LoadX509KeyPair(cliFile, cliFile)
	if err != nil {
		t.Fatal(err)
	}
	echo := e2e.Serve(t, listenLoopback(t), func(c net.Conn) { io.Copy(c, c) })
	tlsTarget := e2e.ServeTLS(t, srvCert, func(c *tls.Conn) { io.Copy(c, c) })
	tests := []struct {
		name    string
		args    []string
		connect func(t *testing.T, addr string)
		want    string
	}{
		{
			name: "server",
			args: []string{"server", "--listen", "127.0.0.1:0", "--target", echo, "--cert", srvFile, "--verifier", "spkipin", "--pin", otherPin},
			connect: func(t *testing.T, addr string) {
				c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cliCert}})
				if err == nil {
					c.SetDeadline(time.Now().Add(10 * time.Second))
					c.Read(make([]byte, 1)) // TLS 1.3: the rejection comes after the handshake
					c.Close()
				}
			},
			want: "pin it: tlspin proxy server --verifier spkipin --pin ",
		},
		{
			name: "client",
			args: []string{"client", "--listen", "127.0.0.1:0", "--target", tlsTarget, "--verifier", "spkipin", "--pin", otherPin},
			connect: func(t *testing.T, addr string) {
				// The local client is reset, maybe before connect returns.
				if c, err := net.Dial("tcp", addr); err == nil {
					c.SetDeadline(time.Now().Add(10 * time.Second))
					c.Read(make([]byte, 1))
					c.Close()
				}
			},
			want: "pin it: tlspin proxy client --verifier spkipin --pin ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prx, addr := startProxy(t, tt.args...)
			tt.connect(t, addr)
			if !wait.Until(10*time.Second, func() bool { return strings.Contains(prx.stderr.String(), "mismatch") }) {
				t.Fatal("no rejection logged")
			}
			if s := prx.stderr.String(); !strings.Contains(s, tt.want) || strings.Contains(s, "tlspin serve") || strings.Contains(s, "tlspin send") {
				t.Errorf("the hint does not name proxy %s (want %q):\n%s", tt.name, tt.want, s)
			}
		})
	}
}

// listenLoopback listens on a free loopback port.
func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
