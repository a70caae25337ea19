package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/core/certs"
)

// inProcess runs tlspin in this process (for commands that start no
// plugin) with stdin, and returns stdout, stderr and the exit code.
func inProcess(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := cli.Env{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	code := cli.RunContext(context.Background(), env, args)
	return stdout.String(), stderr.String(), code
}

// startOpenSSLServer runs openssl s_server on an ephemeral loopback port
// with extra arguments and returns its address.
func startOpenSSLServer(t *testing.T, certFile string, extra ...string) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	args := append([]string{"s_server", "-accept", "127.0.0.1:0", "-cert", certFile, "-key", certFile}, extra...)
	cmd := exec.Command("openssl", args...)
	// s_server stops at the end of its stdin: give it one that stays open.
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ACCEPT "); ok {
				addr <- a
				break
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(20 * time.Second):
		t.Fatal("openssl s_server did not print its address within 20s")
	}
	return ""
}

func writeSelfSigned(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "needs-client-cert", SANs: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := certs.EncodeKey(key)
	p := filepath.Join(dir, "server.pem")
	if err := os.WriteFile(p, append(keyPEM, certs.EncodeCert(c)...), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, c.Raw
}

// TestFingerprintServerRequiringClientCert: a TLS 1.2 server that demands
// a client certificate ends the handshake after sending its own; the
// fingerprint is still printed, and stderr says the handshake failed.
func TestFingerprintServerRequiringClientCert(t *testing.T) {
	certFile, der := writeSelfSigned(t, t.TempDir())
	addr := startOpenSSLServer(t, certFile, "-tls1_2", "-Verify", "1")
	stdout, stderr, code := inProcess(t, "", "fingerprint", "--algo", "sha256", addr)
	sum := sha256.Sum256(der)
	if code != cli.ExitOK || strings.TrimSpace(stdout) != hex.EncodeToString(sum[:]) {
		t.Fatalf("exit %d, stdout %q, want %x; stderr %s", code, stdout, sum, stderr)
	}
	if !strings.Contains(stderr, "TLS handshake failed after the server sent its certificate") {
		t.Errorf("stderr does not say the handshake failed: %s", stderr)
	}
}
