package tlspin_test

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/e2e"
)

// TestHookServerConfigKeepsLaterSettings: what a program sets on the
// configuration HookServerConfig (or ServerConfig) returned holds for its
// connections, as it does for HookClientConfig's: a minimum version
// raised after the call is not silently back to TLS 1.2.
func TestHookServerConfigKeepsLaterSettings(t *testing.T) {
	srv, other, client := newIdentity("server"), newIdentity("other"), newIdentity("client")
	v := start(t, []string{"spkipin:pin=" + client.spki})
	for _, tt := range []struct {
		name  string
		set   func(*tls.Config)
		dial  func(*tls.Config)
		check func(tls.ConnectionState, error) string
	}{
		{"MinVersion", func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 },
			func(cs tls.ConnectionState, err error) string {
				if err == nil {
					return "a TLS 1.2 client was served after MinVersion was set to TLS 1.3"
				}
				return ""
			}},
		{"NextProtos", func(c *tls.Config) { c.NextProtos = []string{"h2"} }, func(c *tls.Config) { c.NextProtos = []string{"h2"} },
			func(cs tls.ConnectionState, err error) string {
				if err != nil || cs.NegotiatedProtocol != "h2" {
					return "ALPN not negotiated: " + cs.NegotiatedProtocol
				}
				return ""
			}},
		{"Certificates", func(c *tls.Config) { c.Certificates = []tls.Certificate{other.cert} }, func(*tls.Config) {},
			func(cs tls.ConnectionState, err error) string {
				if err != nil || len(cs.PeerCertificates) == 0 || !cs.PeerCertificates[0].Equal(other.cert.Leaf) {
					return "the server still presents the certificate replaced"
				}
				return ""
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := v.ServerConfig(srv.cert)
			tt.set(cfg)
			ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
			if err != nil {
				t.Fatal(err)
			}
			addr := e2e.Serve(t, ln, func(c net.Conn) { c.(*tls.Conn).Handshake(); c.Close() })
			cc := &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{client.cert}}
			tt.dial(cc)
			d := &net.Dialer{Timeout: 5 * time.Second}
			var cs tls.ConnectionState
			c, err := tls.DialWithDialer(d, "tcp", addr, cc)
			if err == nil {
				cs = c.ConnectionState()
				c.Close()
			}
			if msg := tt.check(cs, err); msg != "" {
				t.Errorf("%s (err %v)", msg, err)
			}
		})
	}
}
