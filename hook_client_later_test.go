package tlspin_test

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
)

// TestHookClientConfigReplacedLater: HookClientConfig sets
// InsecureSkipVerify, leaving the verifiers in VerifyConnection as the
// only check, so a VerifyConnection a program assigned after the call
// (its own check, replacing the verifiers') accepted any server. A full
// handshake now fails, saying why, unless the configuration's
// VerifyConnection is still the hook's.
func TestHookClientConfigReplacedLater(t *testing.T) {
	pinned, other := newIdentity("pinned"), newIdentity("other")
	v := start(t, []string{"spkipin:pin=" + pinned.spki})
	const replaced = "VerifyConnection was replaced after HookClientConfig"
	for _, tt := range []struct {
		name   string
		after  func(*tls.Config)
		server identity
		want   string // in the client's error; "" for none
	}{
		{"replaced: another server", func(c *tls.Config) { c.VerifyConnection = func(tls.ConnectionState) error { return nil } }, other, replaced},
		{"replaced: the pinned server", func(c *tls.Config) { c.VerifyConnection = func(tls.ConnectionState) error { return nil } }, pinned, replaced},
		{"wrapped: refused, as documented", func(c *tls.Config) {
			hook := c.VerifyConnection
			c.VerifyConnection = func(cs tls.ConnectionState) error { return hook(cs) }
		}, pinned, replaced},
		{"removed", func(c *tls.Config) { c.VerifyConnection = nil }, pinned, replaced},
		{"VerifyPeerCertificate set after: still verified", func(c *tls.Config) {
			c.VerifyPeerCertificate = func([][]byte, [][]*x509.Certificate) error { return nil }
		}, other, "rejected"},
		{"hooked twice, the pinned server", func(c *tls.Config) {
			v.HookClientConfig(c, "localhost")
		}, pinned, ""},
		{"untouched, the pinned server", func(*tls.Config) {}, pinned, ""},
		{"untouched, another server", func(*tls.Config) {}, other, "rejected"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := v.HookClientConfig(&tls.Config{}, "localhost")
			tt.after(cfg)
			_, cerr, _ := handshakeOverTCP(t, cfg, &tls.Config{Certificates: []tls.Certificate{tt.server.cert}})
			switch {
			case tt.want == "" && cerr != nil:
				t.Fatalf("handshake: %v", cerr)
			case tt.want != "" && (cerr == nil || !strings.Contains(cerr.Error(), tt.want)):
				t.Fatalf("ATTACK: handshake err = %v, want one saying %q", cerr, tt.want)
			}
		})
	}
}
