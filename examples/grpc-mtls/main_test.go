package main

import (
	"bufio"
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// identity makes a certificate with `tlspin cert` and returns its file
// and its SPKI pin.
func identity(t *testing.T, name string) (file, spki string) {
	t.Helper()
	tl := testbin.Tlspin(t)
	file = filepath.Join(t.TempDir(), name+".pem")
	if out, err := exec.Command(tl, "cert", "--out", file).CombinedOutput(); err != nil {
		t.Fatalf("tlspin cert: %v\n%s", err, out)
	}
	out, err := exec.Command(tl, "fingerprint", "--algo", "spki", "--format", "curl", file).Output()
	if err != nil {
		t.Fatal(err)
	}
	return file, strings.TrimSpace(string(out))
}

func bin(t *testing.T) string { return testbin.Build(t, "./examples/grpc-mtls", "grpc-mtls") }

// startServer runs the example's server on a free loopback port and
// returns its address once it listens.
func startServer(t *testing.T, cert, spec string) string {
	t.Helper()
	cmd := exec.Command(bin(t), "server", "127.0.0.1:0", cert, spec)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("server did not stop on SIGINT; stderr:\n%s", stderr.String())
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n') // ends when the server exits
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		t.Fatalf("server: %q, %v; stderr:\n%s", line, err, stderr.String())
	}
	return addr
}

func runClient(t *testing.T, addr, cert, spec string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin(t), "client", addr, cert, spec)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// TestMutualTLS: each side pins the other's key; a client with another
// key, or one pinning another server, gets nothing.
func TestMutualTLS(t *testing.T) {
	srvCert, srvPin := identity(t, "server")
	cliCert, cliPin := identity(t, "client")
	other, otherPin := identity(t, "other")
	addr := startServer(t, srvCert, "spkipin:pin="+cliPin)

	stdout, stderr, code := runClient(t, addr, cliCert, "spkipin:pin="+srvPin)
	if code != 0 || strings.TrimSpace(stdout) != "SERVING" {
		t.Fatalf("allowed client: exit %d, stdout %q; stderr:\n%s", code, stdout, stderr)
	}
	tests := []struct {
		name, cert, spec, says string
	}{
		{"client with another key", other, "spkipin:pin=" + srvPin, ""},
		{"client pinning another server", cliCert, "spkipin:pin=" + otherPin, "server rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runClient(t, addr, tt.cert, tt.spec)
			if code != 1 || stdout != "" || !strings.Contains(stderr, tt.says) {
				t.Errorf("exit %d, stdout %q; want exit 1, nothing served; stderr:\n%s", code, stdout, stderr)
			}
		})
	}
}
