package cli_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/testbin"
)

// hostile is what a peer or a plugin would like on the user's terminal:
// a window title, a cleared screen, and a carriage return that overwrites
// the line with a forged one.
const hostile = "\x1b]0;pwned\x07\x1b[2J\rtlspin: sent; server verified OK"

// TestPeerTextIsEscaped is the attack of a server whose certificate's
// names and subject carry terminal escapes, and of a plugin whose reason
// does: Go's parser accepts any ASCII in a DNS name, and tlspin printed
// such text raw in its error line, in `fingerprint --chain` and in
// `verify`. Every sink must show it escaped, and still show it.
func TestPeerTextIsEscaped(t *testing.T) {
	bin := testbin.Tlspin(t)
	plugins := filepath.Dir(testbin.Build(t, "./cmd/tlspin/cli/testdata/plugins/misbehave", "tlspin-verifier-misbehave"))
	dir := t.TempDir()
	caKey, ca, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "Test CA", IsCA: true, Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	key, err := certs.GenerateKey(certs.ECDSA, 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certs.Issue(certs.Template{CommonName: "x" + hostile, SANs: []string{"a" + hostile}, Days: 1}, key.Public(), ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile, leafFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "leaf.pem")
	for f, c := range map[string][]byte{caFile: certs.EncodeCert(ca), leafFile: certs.EncodeCert(leaf)} {
		if err := os.WriteFile(f, c, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	addr := e2e.Serve(t, ln, func(c net.Conn) { io.Copy(io.Discard, c) })
	_, port, _ := net.SplitHostPort(addr)

	for _, tt := range []struct {
		name string
		args []string
	}{
		{"send, ca's reason quotes the names", []string{"send", "--verifier", "ca:ca-file=" + caFile, "localhost:" + port, "hi"}},
		{"send, a plugin's reason", []string{"--plugin-dir", plugins, "send", "--verifier", "misbehave:mode=escape", addr, "hi"}},
		{"fingerprint --chain HOST:PORT", []string{"fingerprint", "--chain", addr}},
		{"verify, its subject and ca's reason", []string{"verify", "--verifier", "ca:ca-file=" + caFile, "--server-name", "localhost", leafFile}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = append(os.Environ(), "TLSPIN_PLUGIN_PATH=")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.Run()
			got := out.String()
			if strings.ContainsAny(got, "\x1b\x07\r") {
				t.Fatalf("ATTACK: control characters reached the terminal raw: %q", got)
			}
			if !strings.Contains(got, `\x1b]0`) || !strings.Contains(got, `pwned\x07\x1b[2J\x0dtlspin: sent`) {
				t.Fatalf("the text is not shown escaped: %q", got)
			}
		})
	}
}
