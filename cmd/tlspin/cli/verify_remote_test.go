package cli_test

import (
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/e2e"
)

// TestVerifyRemote checks a certificate file against the peers tofu
// recorded: --remote gives the address the request carries, which tofu
// keys its pins by (a server's HOST:PORT, a client's host). Without it a
// file had no address, and no recorded peer could be looked up.
func TestVerifyRemote(t *testing.T) {
	dir := t.TempDir()
	_, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "peer", Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	pem := filepath.Join(dir, "peer.pem")
	if err := os.WriteFile(pem, certs.EncodeCert(c), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	spki := "spki:" + base64.StdEncoding.EncodeToString(sum[:])
	known := filepath.Join(dir, "known")
	if err := os.WriteFile(known, []byte("example.test:8443 "+spki+"\nclient@192.0.2.7 "+spki+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tofu := "tofu:file=" + known
	tests := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"a recorded server", []string{"--remote", "example.test:8443", pem}, 0, "matched: tofu=" + known + ":1 example.test:8443"},
		{"the server name names the host", []string{"--server-name", "example.test", "--remote", "127.0.0.1:8443", pem}, 0, "matched: tofu=" + known + ":1 example.test:8443"},
		{"another port is another peer", []string{"--remote", "example.test:9443", pem}, 3, "first use"},
		{"a recorded client", []string{"--side", "client", "--remote", "192.0.2.7:50000", pem}, 0, "matched: tofu=" + known + ":2 client@192.0.2.7"},
		{"no port", []string{"--remote", "example.test", pem}, 2, `--remote "example.test": want HOST:PORT`},
		{"no host", []string{"--remote", ":8443", pem}, 2, `--remote ":8443": want HOST:PORT`},
		{"a port out of range", []string{"--remote", "example.test:70000", pem}, 2, `--remote "example.test:70000": port "70000"`},
		{"with a live server", []string{"--remote", "example.test:8443", "127.0.0.1:1"}, 2, `--remote "example.test:8443": a live server's address is the one dialled`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := e2e.RunTlspin(t, append([]string{"verify", "--verifier", tofu}, tt.args...)...)
			out := stdout + stderr
			if code != tt.code || !strings.Contains(out, tt.says) {
				t.Errorf("tlspin verify %s: exit %d, want %d saying %q; output:\n%s", strings.Join(tt.args, " "), code, tt.code, tt.says, out)
			}
		})
	}
}
