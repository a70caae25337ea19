package cli_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/internal/e2e"
)

// TestSendShowsItsCertificateOnlyToTrustedServers is the attack of a
// server that asks for a client certificate and presents one the
// verifiers reject, in TLS 1.2 (where the client's certificate travels in
// clear) and 1.3: send --cert must end the handshake before its
// certificate, or a byte of the message, reaches that server. A server
// the verifiers allow gets both, even when its request names CAs that did
// not issue ours (caNames).
func TestSendShowsItsCertificateOnlyToTrustedServers(t *testing.T) {
	dir := t.TempDir()
	srv, other, client := e2e.NewIdentity(t, dir, "server"), e2e.NewIdentity(t, dir, "other"), e2e.NewIdentity(t, dir, "client")
	const msg = "secret"
	for _, tt := range []struct {
		version uint16
		pin     string
		caNames bool
		code    int
	}{
		{tls.VersionTLS12, other.SPKI(), false, cli.ExitRejected},
		{tls.VersionTLS13, other.SPKI(), false, cli.ExitRejected},
		{tls.VersionTLS12, other.SPKI(), true, cli.ExitRejected},
		{tls.VersionTLS13, other.SPKI(), true, cli.ExitRejected},
		{tls.VersionTLS12, srv.SPKI(), false, cli.ExitOK},
		{tls.VersionTLS13, srv.SPKI(), false, cli.ExitOK},
		{tls.VersionTLS12, srv.SPKI(), true, cli.ExitOK},
		{tls.VersionTLS13, srv.SPKI(), true, cli.ExitOK},
	} {
		allowed := tt.code == cli.ExitOK
		t.Run(fmt.Sprintf("%s allowed=%v caNames=%v", tls.VersionName(tt.version), allowed, tt.caNames), func(t *testing.T) {
			type seen struct {
				certs int
				read  int64
			}
			got := make(chan seen, 1)
			var certs int
			var names *x509.CertPool
			if tt.caNames {
				// The request names "other", which did not issue the
				// client's certificate.
				names = x509.NewCertPool()
				names.AddCert(other.Leaf)
			}
			ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
				ClientCAs:    names,
				Certificates: []tls.Certificate{srv.Cert},
				MaxVersion:   tt.version,
				ClientAuth:   tls.RequestClientCert,
				// Called as soon as the client's Certificate message
				// arrives, before anything is checked.
				VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
					certs = len(raw)
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			addr := e2e.Serve(t, ln, func(c net.Conn) {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				err := c.(*tls.Conn).Handshake()
				var n int64
				if err == nil {
					n, _ = io.Copy(io.Discard, c)
				}
				got <- seen{certs, n}
			})
			code, _, stderr := e2e.RunTlspin(t, "send", "--cert", client.File, "--verifier", "spkipin", "--pin", tt.pin, addr, msg)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, stderr)
			}
			var s seen
			select {
			case s = <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("the server's handshake did not end")
			}
			switch {
			case !allowed && (s.certs != 0 || s.read != 0):
				t.Fatalf("ATTACK: a server the verifiers rejected got %d client certificates and %d bytes of the message", s.certs, s.read)
			case allowed && (s.certs != 1 || s.read != int64(len(msg))):
				t.Fatalf("the server got %d client certificates and %d bytes, want 1 and %d", s.certs, s.read, len(msg))
			}
		})
	}
}
