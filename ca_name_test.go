package tlspin_test

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
)

// TestCAChecksTheNameOverIP is the attack of a server that connects by IP
// address: crypto/tls sends no server name for an IP, and ClientConfig and
// HookClientConfig do not know the address dialled, so ca had no name to
// check and accepted any certificate of a trusted CA, issued for any name.
// The name the client asked for is now checked, and a client that gave
// none is refused rather than trusting every name.
func TestCAChecksTheNameOverIP(t *testing.T) {
	rootKey, root, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "Test Root", IsCA: true, Days: 1})
	fatalIf(err)
	issue := func(sans ...string) tls.Certificate {
		key, err := certs.GenerateKey(certs.ECDSA, 0)
		fatalIf(err)
		c, err := certs.Issue(certs.Template{CommonName: sans[0], SANs: sans, Days: 1}, key.Public(), root, rootKey)
		fatalIf(err)
		return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key}
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	fatalIf(os.WriteFile(caFile, certs.EncodeCert(root), 0o600))
	v := start(t, []string{"ca:ca-file=" + caFile})

	tests := []struct {
		name       string
		serverSANs []string
		config     func() *tls.Config
		want       string // "" to allow, else in the error
	}{
		{"another name, ClientConfig without a name", []string{"attacker.example"}, func() *tls.Config { return v.ClientConfig("") }, "no host name to check"},
		{"another name, HookClientConfig without a name", []string{"attacker.example"}, func() *tls.Config { return v.HookClientConfig(&tls.Config{}, "") }, "no host name to check"},
		{"another name, ClientConfig with the IP", []string{"attacker.example"}, func() *tls.Config { return v.ClientConfig("127.0.0.1") }, `not valid for "127.0.0.1"`},
		{"another name, the IP in the caller's ServerName", []string{"attacker.example"}, func() *tls.Config { return v.HookClientConfig(&tls.Config{ServerName: "127.0.0.1"}, "") }, `not valid for "127.0.0.1"`},
		{"the IP, ClientConfig with the IP", []string{"127.0.0.1"}, func() *tls.Config { return v.ClientConfig("127.0.0.1") }, ""},
		{"the IP, the caller's ServerName", []string{"127.0.0.1"}, func() *tls.Config { return v.HookClientConfig(&tls.Config{ServerName: "127.0.0.1"}, "") }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httpsServer(identity{cert: issue(tt.serverSANs...)})
			defer srv.Close()
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: tt.config()}, Timeout: 10 * time.Second}
			got, err := get(c, srv.URL) // https://127.0.0.1:PORT
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("ATTACK: a certificate for %q was accepted at %s: %s", tt.serverSANs, srv.URL, got)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("refused, but the error does not say %q: %v", tt.want, err)
			}
		})
	}
}
