package adversary

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// pki is a root CA, an intermediate under it, a legitimate leaf under the
// intermediate, and an attacker's self-signed leaf with the same names.
type pki struct {
	dir                  string
	root, inter, leaf    e2e.Identity
	attacker             e2e.Identity
	chainFile, leafChain string // PEM: intermediate+root; the legitimate leaf
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	p := &pki{dir: dir}
	p.root = e2e.Issue(t, dir, "root", nil, true)
	p.inter = e2e.Issue(t, dir, "inter", &p.root, true)
	p.leaf = e2e.Issue(t, dir, "leaf", &p.inter, false)
	p.attacker = e2e.NewIdentity(t, dir, "attacker")
	p.chainFile = writeFile(t, dir, "chain.pem", e2e.PEMCert(p.inter), e2e.PEMCert(p.root))
	p.leafChain = writeFile(t, dir, "leafchain.pem", e2e.PEMCert(p.leaf))
	return p
}

func writeFile(t *testing.T, dir, name string, parts ...[]byte) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, bytes.Join(parts, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func digest(t *testing.T, a pin.Algo, id e2e.Identity) string {
	t.Helper()
	d, err := pin.Sum(a, id.Leaf.Raw)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(d)
}

// chainSpecs are the verifier modes that pin a certificate after the leaf,
// for the certificate pinned.
func chainSpecs(t *testing.T, p *pki, pinned e2e.Identity, mode string) map[string]string {
	t.Helper()
	list := writeFile(t, t.TempDir(), "allow.txt", []byte("spki:"+strings.TrimPrefix(pinned.SPKI(), "sha256//")+"\n"))
	return map[string]string{
		"spkipin":   "spkipin:pin=" + pinned.SPKI() + ",chain=" + mode,
		"sha256pin": "sha256pin:pin=" + digest(t, pin.SHA256, pinned) + ",chain=" + mode,
		"md5pin":    "md5pin:pin=" + digest(t, pin.MD5, pinned) + ",chain=" + mode,
		"allowlist": "allowlist:file=" + list + ",chain=" + mode,
	}
}

// TestForgedChainAgainstSend is the critical finding of the adversarial
// review: openssl s_server presents an attacker's self-signed leaf and
// appends the real (public) intermediate and root, or the real leaf.
// tlspin send must refuse to talk, for every verifier with a chain mode.
// The control case, the real leaf with the same chain, must pass, so the
// test fails if the attack setup stops exercising the chain modes.
func TestForgedChainAgainstSend(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name      string
		mode      string
		pinned    e2e.Identity
		cert      e2e.Identity
		chain     string
		wantCode  int
		wantInErr string
	}{
		{"chain=ca, root pinned, real server", "ca", p.root, p.leaf, p.chainFile, 0, ""},
		{"chain=ca, root pinned, attacker carries the chain", "ca", p.root, p.attacker, p.chainFile, 3, "chain does not lead from the leaf to the pinned certificate"},
		{"chain=ca, intermediate pinned, attacker carries the chain", "ca", p.inter, p.attacker, p.chainFile, 3, "chain does not lead from the leaf to the pinned certificate"},
		{"chain=any, intermediate pinned, real server", "any", p.inter, p.leaf, p.chainFile, 0, ""},
		{"chain=any, intermediate pinned, attacker carries the chain", "any", p.inter, p.attacker, p.chainFile, 3, "chain does not lead from the leaf to the pinned certificate"},
		{"chain=any, leaf pinned, attacker carries the real leaf", "any", p.leaf, p.attacker, p.leafChain, 3, "chain does not lead from the leaf to the pinned certificate"},
	}
	for _, tc := range tests {
		for name, spec := range chainSpecs(t, p, tc.pinned, tc.mode) {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				addr, out := e2e.StartSServer(t, "-cert", tc.cert.File, "-key", tc.cert.File, "-cert_chain", tc.chain)
				const secret = "SECRET for the real server only"
				code, _, stderr := e2e.RunTlspin(t, "send", "--log-level", "error", "--verifier", spec, addr, secret)
				if code != tc.wantCode {
					t.Fatalf("send exited %d, want %d\n%s", code, tc.wantCode, stderr)
				}
				if tc.wantCode == 0 {
					if !wait.Until(5*time.Second, func() bool { return strings.Contains(out.String(), secret) }) {
						t.Fatalf("the real server did not receive the message")
					}
					return
				}
				if !strings.Contains(stderr, tc.wantInErr) {
					t.Errorf("error does not say %q:\n%s", tc.wantInErr, stderr)
				}
				if strings.Contains(out.String(), secret) {
					t.Fatalf("the attacker received the secret")
				}
			})
		}
	}
}

// TestForgedChainAgainstServe is the same attack on the server side: an
// openssl s_client presents an attacker's self-signed client certificate
// with the real CA appended to `tlspin serve --verifier ...,chain=ca`.
func TestForgedChainAgainstServe(t *testing.T) {
	p := newPKI(t)
	srv := e2e.NewIdentity(t, p.dir, "server")
	openssl := e2e.NeedOpenSSL(t)
	tests := []struct {
		name   string
		cert   e2e.Identity
		accept bool
	}{
		{"real client", p.leaf, true},
		{"attacker carries the chain", p.attacker, false},
	}
	for _, tc := range tests {
		for name, spec := range chainSpecs(t, p, p.root, "ca") {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				s := e2e.StartServe(t, "--cert", srv.File, "--verifier", spec)
				msg := "data from " + tc.name
				cmd := exec.Command(openssl, "s_client", "-connect", s.Addr, "-quiet", "-no_ign_eof", "-verify_quiet",
					"-cert", tc.cert.File, "-key", tc.cert.File, "-cert_chain", p.chainFile)
				cmd.Stdin = strings.NewReader(msg + "\n")
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := runBounded(cmd, 20*time.Second); err != nil && tc.accept {
					t.Logf("s_client: %v\n%s", err, out.String())
				}
				if tc.accept {
					if !wait.Until(5*time.Second, func() bool { return s.Stdout.String() == msg+"\n" }) {
						t.Fatalf("serve printed %q, want %q", s.Stdout, msg+"\n")
					}
					return
				}
				if !wait.Until(5*time.Second, func() bool {
					return strings.Contains(s.Stderr.String(), "chain does not lead from the leaf to the pinned certificate")
				}) {
					t.Fatalf("serve did not log the forged chain:\n%s", s.Stderr)
				}
				if s.Stdout.String() != "" {
					t.Fatalf("serve printed %q from the attacker", s.Stdout)
				}
			})
		}
	}
}

// runBounded runs cmd and kills it after d.
func runBounded(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		return <-done
	}
}
