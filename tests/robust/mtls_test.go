package robust

import (
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/internal/e2e"

	"github.com/tlspin/tlspin/internal/wait"
)

func md5hex(id e2e.Identity) string {
	s := md5.Sum(id.Leaf.Raw)
	return hex.EncodeToString(s[:])
}

// TestMutualTLSWithEachVerifier runs `tlspin serve --verifier V` and
// `tlspin send --cert` for every built-in verifier: the trusted client is
// served, an untrusted one and one without a certificate are refused,
// logged with the reason and the client's fingerprint, and nothing they
// sent is printed.
func TestMutualTLSWithEachVerifier(t *testing.T) {
	dir := t.TempDir()
	srv := e2e.NewIdentity(t, dir, "server")
	ca := e2e.Issue(t, dir, "ca", nil, true)
	issued := e2e.Issue(t, dir, "issued-client", &ca, false)
	good := e2e.NewIdentity(t, dir, "good-client")
	bad := e2e.NewIdentity(t, dir, "bad-client")
	allow := filepath.Join(dir, "allow.txt")
	if err := os.WriteFile(allow, []byte("# clients\nsha256:"+good.SHA256()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca-cert.pem")
	if err := os.WriteFile(caFile, e2e.PEMCert(ca), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		good e2e.Identity
	}{
		{"md5pin", []string{"--verifier", "md5pin", "--pin", md5hex(good)}, good},
		{"sha256pin", []string{"--verifier", "sha256pin", "--pin", good.SHA256()}, good},
		{"spkipin", []string{"--verifier", "spkipin", "--pin", good.SPKI()}, good},
		{"allowlist", []string{"--verifier", "allowlist:file=" + allow}, good},
		// tofu records the first client of a host; a different key from
		// the same host is then refused.
		{"tofu", []string{"--verifier", "tofu:file=" + filepath.Join(t.TempDir(), "known")}, good},
		{"ca", []string{"--verifier", "ca:ca-file=" + caFile}, issued},
		{"require all", []string{"--verifier", "spkipin:pin=" + good.SPKI(), "--verifier", "sha256pin:pin=" + good.SHA256(), "--require", "all"}, good},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := e2e.StartServe(t, append([]string{"--cert", srv.File}, tc.args...)...)
			send := func(cert *e2e.Identity, msg string) int {
				args := []string{"send", "--log-level", "error", "--verifier", "spkipin", "--pin", srv.SPKI()}
				if cert != nil {
					args = append(args, "--cert", cert.File)
				}
				code, _, stderr := e2e.RunTlspin(t, append(args, s.Addr, msg)...)
				if code != 0 {
					t.Logf("send %s: exit %d: %s", msg, code, strings.TrimSpace(stderr))
				}
				return code
			}
			if code := send(&tc.good, "hello from the trusted client"); code != 0 {
				t.Fatalf("trusted client: exit %d", code)
			}
			if code := send(&bad, "secret from the untrusted client"); code == 0 {
				t.Error("untrusted client: exit 0, want a refusal")
			}
			if code := send(nil, "secret from a client without certificate"); code == 0 {
				t.Error("client without certificate: exit 0, want a refusal")
			}
			if code := send(&tc.good, "trusted again"); code != 0 {
				t.Errorf("trusted client after the refusals: exit %d", code)
			}
			if !wait.Until(5e9, func() bool { return strings.Contains(s.Stdout.String(), "trusted again") }) {
				t.Fatalf("serve stdout %q lacks the trusted client's lines", s.Stdout)
			}
			out := s.Stdout.String()
			if want := "hello from the trusted client\ntrusted again\n"; out != want {
				t.Errorf("serve printed %q, want exactly %q", out, want)
			}
			logs := s.Stderr.String()
			if !strings.Contains(logs, "peer_sha256="+bad.SHA256()) || !strings.Contains(logs, "client rejected") {
				t.Errorf("rejection of the untrusted client not logged with its fingerprint %s:\n%s", bad.SHA256(), logs)
			}
			if !strings.Contains(logs, "peer_cert=none") {
				t.Errorf("rejection of the client without certificate not logged:\n%s", logs)
			}
			if strings.Contains(logs, "secret") {
				t.Errorf("serve logged what a rejected client sent:\n%s", logs)
			}
		})
	}
}
