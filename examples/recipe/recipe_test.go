// Package recipe checks that tlspin interoperates with the recipe it
// replaces: the recipe's Python server and client (ported to Python 3),
// each against tlspin.
package recipe

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

func python(t *testing.T) string {
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s%s", name, args, err, out, stderr.Bytes())
	}
	return strings.TrimSpace(string(out))
}

// start runs a background command and returns the first stderr line that
// matches re (its first group), waiting at most 30s. Its stdout is
// returned through the buffer once it exits.
func start(t *testing.T, re *regexp.Regexp, name string, args ...string) (string, *exec.Cmd, *bytes.Buffer, chan error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		done <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	select {
	case v := <-found:
		return v, cmd, &out, done
	case err := <-done:
		t.Fatalf("%s exited before it was ready: %v", name, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s not ready within 30s", name)
	}
	return "", nil, nil, nil
}

func wait(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("process did not exit within 30s")
	}
	return nil
}

// TestTlspinSendToRecipeServer: the recipe's server, tlspin's client.
func TestTlspinSendToRecipeServer(t *testing.T) {
	py := python(t)
	tlspin := testbin.Tlspin(t)
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	run(t, tlspin, "cert", "--out", cert)
	pin := run(t, tlspin, "fingerprint", "--algo", "md5", cert)

	port, _, out, done := start(t, regexp.MustCompile(`listening on (\d+)`), py, "server.py", "0", cert)
	run(t, tlspin, "--log-level", "error", "send", "--verifier", "md5pin", "--pin", pin, "127.0.0.1:"+port, "CHUPA ESSA MANGA, WIRESHARK!1!!")
	if err := wait(t, done); err != nil {
		t.Fatalf("recipe server: %v", err)
	}
	if got := strings.TrimSpace(out.String()); got != "CHUPA ESSA MANGA, WIRESHARK!1!!" {
		t.Fatalf("recipe server printed %q", got)
	}
}

// TestRecipeClientToTlspinServe: tlspin's server, the recipe's client,
// with the right pin and with a wrong one.
func TestRecipeClientToTlspinServe(t *testing.T) {
	py := python(t)
	tlspin := testbin.Tlspin(t)
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	run(t, tlspin, "cert", "--out", cert)
	pin := run(t, tlspin, "fingerprint", "--algo", "md5", cert)

	tests := []struct {
		name    string
		pin     string
		wantOut string
		wantErr bool
		arrives bool
	}{
		{"right pin", pin, "200 OK\nenviado", false, true},
		{"wrong pin", "00112233445566778899aabbccddeeff", "CERT diferente do esperado", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, srv, out, done := start(t, regexp.MustCompile(`listening: addr=(\S+)`), tlspin, "serve", "--once", "--listen", "127.0.0.1:0", "--cert", cert)
			host, port, _ := strings.Cut(addr, ":")
			got, err := exec.Command(py, "client.py", host, port, tc.pin).CombinedOutput()
			if (err != nil) != tc.wantErr || !strings.Contains(string(got), tc.wantOut) {
				t.Fatalf("recipe client: err %v, output %q; want error %v and %q", err, got, tc.wantErr, tc.wantOut)
			}
			if err := wait(t, done); err != nil {
				t.Fatalf("tlspin serve --once: %v", err)
			}
			_ = srv
			if arrived := strings.Contains(out.String(), "CHUPA ESSA MANGA, WIRESHARK!1!!"); arrived != tc.arrives {
				t.Fatalf("message arrived = %v, want %v (server printed %q)", arrived, tc.arrives, out.String())
			}
		})
	}
}
