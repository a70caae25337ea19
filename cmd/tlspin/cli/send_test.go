package cli_test

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/core/certs"
)

// httpish runs a loopback TLS server that answers a request with an
// HTTP response; with hold, it then keeps the connection open until the
// test ends. It returns the address and the certificate's SPKI pin.
func httpish(t *testing.T, hold bool) (string, string) {
	t.Helper()
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "httpish"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{c.Raw}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(conn)
				for {
					l, err := br.ReadString('\n')
					if err != nil || l == "\r\n" {
						break
					}
				}
				io.WriteString(conn, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from the server\n")
				if hold {
					<-stop
				}
			}()
		}
	}()
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return ln.Addr().String(), "sha256//" + base64.StdEncoding.EncodeToString(sum[:])
}

func TestSendPrintsReply(t *testing.T) {
	tests := []struct {
		name  string
		hold  bool
		extra []string
		want  string
	}{
		{"server closes after its reply", false, nil, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from the server\n"},
		{"server keeps the connection open", true, []string{"--idle-timeout", "300ms"}, "hello from the server\n"},
		{"--no-reply", false, []string{"--no-reply"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, pin := httpish(t, tc.hold)
			start := time.Now()
			args := append([]string{"send", "--verifier", "spkipin", "--pin", pin}, tc.extra...)
			stdout, stderr, code := run(t, append(args, addr, "GET / HTTP/1.0\r\n\r\n")...)
			if code != cli.ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if tc.want == "" && stdout != "" || !strings.HasSuffix(stdout, tc.want) {
				t.Errorf("stdout %q, want the reply %q", stdout, tc.want)
			}
			if d := time.Since(start); tc.hold && d > 10*time.Second {
				t.Errorf("send took %s against a server holding the connection", d)
			}
		})
	}
}
