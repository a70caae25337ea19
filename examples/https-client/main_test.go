package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// server serves "pinned hello" over HTTPS on loopback with a certificate
// made by `tlspin cert`, and returns its URL (as localhost) and the
// certificate's MD5 pin as `tlspin fingerprint` prints it.
func server(t *testing.T) (url, pin string) {
	t.Helper()
	tl := testbin.Tlspin(t)
	cert := filepath.Join(t.TempDir(), "cert.pem")
	if out, err := exec.Command(tl, "cert", "--out", cert).CombinedOutput(); err != nil {
		t.Fatalf("tlspin cert: %v\n%s", err, out)
	}
	out, err := exec.Command(tl, "fingerprint", "--algo", "md5", cert).Output()
	if err != nil {
		t.Fatal(err)
	}
	kp, err := certs.LoadKeyPair(cert, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "pinned hello")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{kp}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return "https://localhost:" + port, strings.TrimSpace(string(out))
}

// run runs the example with no tlspin on $PATH, so that the built-in
// verifier can only be this program re-executed, at debug level.
func run(t *testing.T, args ...string) (stdout, stderr string, pid, code int) {
	t.Helper()
	cmd := exec.Command(testbin.Build(t, "./examples/https-client", "https-client"), args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "TLSPIN_LOG_LEVEL=debug"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.Process.Pid, cmd.ProcessState.ExitCode()
}

var pluginPid = regexp.MustCompile(`plugin started: path=(\S+) pid=(\d+)`)

func TestPinnedGet(t *testing.T) {
	url, pin := server(t)
	stdout, stderr, pid, code := run(t, url, "md5pin:pin="+pin)
	if code != 0 || stdout != "pinned hello" {
		t.Fatalf("exit %d, stdout %q; stderr:\n%s", code, stdout, stderr)
	}
	// The verifier ran as a child process: this program, re-executed.
	if !strings.Contains(stderr, "runner=\"this program, re-executed") {
		t.Errorf("the debug log does not say this program ran the verifier:\n%s", stderr)
	}
	m := pluginPid.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no plugin start in the debug log:\n%s", stderr)
	}
	if child, _ := strconv.Atoi(m[2]); child == pid || child == 0 {
		t.Errorf("verifier pid %d, program pid %d: not a child process", child, pid)
	}
}

func TestWrongPin(t *testing.T) {
	url, _ := server(t)
	stdout, stderr, _, code := run(t, url, "md5pin:pin=00112233445566778899aabbccddeeff")
	if code != 3 || stdout != "" || !strings.Contains(stderr, "md5pin rejected") {
		t.Errorf("exit %d, stdout %q; want exit 3 (errors.Is ErrRejected), nothing fetched; stderr:\n%s", code, stdout, stderr)
	}
}

func TestNotPinned(t *testing.T) {
	if _, stderr, _, code := run(t, "https://localhost:1/", "nosuch"); code != 1 || !strings.Contains(stderr, `unknown verifier "nosuch"`) {
		t.Errorf("exit %d; stderr:\n%s", code, stderr)
	}
}
