package robust

import (
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/internal/wait"
)

func md5hex(id identity) string {
	s := md5.Sum(id.leaf.Raw)
	return hex.EncodeToString(s[:])
}

// TestMutualTLSWithEachVerifier runs `tlspin serve --verifier V` and
// `tlspin send --cert` for every built-in verifier: the trusted client is
// served, an untrusted one and one without a certificate are refused,
// logged with the reason and the client's fingerprint, and nothing they
// sent is printed.
func TestMutualTLSWithEachVerifier(t *testing.T) {
	dir := t.TempDir()
	srv := newIdentity(t, dir, "server")
	ca := issue(t, dir, "ca", nil, true)
	issued := issue(t, dir, "issued-client", &ca, false)
	good := newIdentity(t, dir, "good-client")
	bad := newIdentity(t, dir, "bad-client")
	allow := filepath.Join(dir, "allow.txt")
	if err := os.WriteFile(allow, []byte("# clients\nsha256:"+good.sha256()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca-cert.pem")
	if err := os.WriteFile(caFile, pemCert(ca), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		good identity
	}{
		{"md5pin", []string{"--verifier", "md5pin", "--pin", md5hex(good)}, good},
		{"sha256pin", []string{"--verifier", "sha256pin", "--pin", good.sha256()}, good},
		{"spkipin", []string{"--verifier", "spkipin", "--pin", good.spki()}, good},
		{"allowlist", []string{"--verifier", "allowlist:file=" + allow}, good},
		// tofu records the first client of a host; a different key from
		// the same host is then refused.
		{"tofu", []string{"--verifier", "tofu:file=" + filepath.Join(t.TempDir(), "known")}, good},
		{"ca", []string{"--verifier", "ca:ca-file=" + caFile}, issued},
		{"require all", []string{"--verifier", "spkipin:pin=" + good.spki(), "--verifier", "sha256pin:pin=" + good.sha256(), "--require", "all"}, good},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServe(t, append([]string{"--cert", srv.file}, tc.args...)...)
			send := func(cert *identity, msg string) int {
				args := []string{"send", "--log-level", "error", "--verifier", "spkipin", "--pin", srv.spki()}
				if cert != nil {
					args = append(args, "--cert", cert.file)
				}
				code, _, stderr := runTlspin(t, append(args, s.addr, msg)...)
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
			if !wait.Until(5e9, func() bool { return strings.Contains(s.stdout.String(), "trusted again") }) {
				t.Fatalf("serve stdout %q lacks the trusted client's lines", s.stdout)
			}
			out := s.stdout.String()
			if want := "hello from the trusted client\ntrusted again\n"; out != want {
				t.Errorf("serve printed %q, want exactly %q", out, want)
			}
			logs := s.stderr.String()
			if !strings.Contains(logs, "peer_sha256="+bad.sha256()) || !strings.Contains(logs, "client rejected") {
				t.Errorf("rejection of the untrusted client not logged with its fingerprint %s:\n%s", bad.sha256(), logs)
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
