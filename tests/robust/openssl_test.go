package robust

import (
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/wait"
)

func needOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	return p
}

// TestOpenSSLClientAgainstServe uses real `openssl s_client` as the client
// of `tlspin serve --verifier spkipin`, with the trusted certificate, an
// untrusted one and none; and against a server without a verifier.
func TestOpenSSLClientAgainstServe(t *testing.T) {
	openssl := needOpenSSL(t)
	dir := t.TempDir()
	srv := newIdentity(t, dir, "server")
	good := newIdentity(t, dir, "good")
	bad := newIdentity(t, dir, "bad")
	tests := []struct {
		name     string
		verifier bool
		cert     *identity
		accept   bool
	}{
		{"trusted client certificate", true, &good, true},
		{"untrusted client certificate", true, &bad, false},
		{"no client certificate", true, nil, false},
		{"no verifier, no client certificate", false, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"--cert", srv.file}
			if tc.verifier {
				args = append(args, "--verifier", "spkipin", "--pin", good.spki())
			}
			s := startServe(t, args...)
			msg := "hello from openssl s_client"
			cargs := []string{"s_client", "-connect", s.addr, "-quiet", "-no_ign_eof", "-verify_quiet"}
			if tc.cert != nil {
				cargs = append(cargs, "-cert", tc.cert.file, "-key", tc.cert.file)
			}
			cmd := exec.Command(openssl, cargs...)
			cmd.Stdin = strings.NewReader(msg + "\n")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("s_client did not finish:\n%s", out.String())
			}
			if tc.accept {
				if !wait.Until(5*time.Second, func() bool { return s.stdout.String() == msg+"\n" }) {
					t.Fatalf("serve printed %q, want %q\ns_client:\n%s", s.stdout, msg+"\n", out.String())
				}
				return
			}
			if !wait.Until(5*time.Second, func() bool { return strings.Contains(s.stderr.String(), "client rejected") }) {
				t.Fatalf("no rejection logged:\n%s", s.stderr)
			}
			if tc.cert != nil && !strings.Contains(s.stderr.String(), "peer_sha256="+tc.cert.sha256()) {
				t.Errorf("rejection not logged with the client's fingerprint:\n%s", s.stderr)
			}
			time.Sleep(100 * time.Millisecond) // anything printed would be printed by now
			if s.stdout.String() != "" {
				t.Fatalf("serve printed %q from a rejected client", s.stdout)
			}
		})
	}
}

// startSServer runs `openssl s_server` on a free loopback port and returns
// its address and output. Its stdin stays open until the test ends (it
// quits at EOF).
func startSServer(t *testing.T, args ...string) (string, *lockedBuffer) {
	t.Helper()
	openssl := needOpenSSL(t)
	cmd := exec.Command(openssl, append([]string{"s_server", "-accept", "127.0.0.1:0", "-naccept", "1"}, args...)...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		once.Do(func() { stdin.Close() })
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("s_server:\n%s", out)
		}
	})
	re := regexp.MustCompile(`ACCEPT (\S+:\d+)`)
	var addr string
	if !wait.Until(10*time.Second, func() bool {
		m := re.FindStringSubmatch(out.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}) {
		t.Fatalf("s_server did not listen:\n%s", out)
	}
	return addr, out
}

// TestSendAgainstOpenSSLServer uses real `openssl s_server` as the server
// of `tlspin send`: pinned and presenting a client certificate when the
// server requires one.
func TestSendAgainstOpenSSLServer(t *testing.T) {
	dir := t.TempDir()
	srv := newIdentity(t, dir, "server")
	client := newIdentity(t, dir, "client")
	other := newIdentity(t, dir, "other")
	tests := []struct {
		name     string
		sargs    []string
		pin      string
		cert     *identity
		wantCode int
		received bool
	}{
		{"pinned, no client certificate asked", nil, srv.spki(), nil, 0, true},
		{"pinned, client certificate required", []string{"-Verify", "1"}, srv.spki(), &client, 0, true},
		{"client certificate required, none given", []string{"-Verify", "1"}, srv.spki(), nil, 1, false},
		{"wrong pin: nothing sent", nil, other.spki(), nil, 3, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, out := startSServer(t, append([]string{"-cert", srv.file, "-key", srv.file}, tc.sargs...)...)
			msg := "hello s_server from tlspin"
			args := []string{"send", "--log-level", "error", "--verifier", "spkipin", "--pin", tc.pin}
			if tc.cert != nil {
				args = append(args, "--cert", tc.cert.file)
			}
			code, _, stderr := runTlspin(t, append(args, addr, msg)...)
			if code != tc.wantCode {
				t.Fatalf("send exited %d, want %d: %s", code, tc.wantCode, stderr)
			}
			if tc.received {
				if !wait.Until(5*time.Second, func() bool { return strings.Contains(out.String(), msg) }) {
					t.Fatalf("s_server did not receive %q", msg)
				}
				if tc.cert != nil && !strings.Contains(out.String(), "Client certificate") {
					t.Errorf("s_server saw no client certificate")
				}
				return
			}
			time.Sleep(100 * time.Millisecond)
			if strings.Contains(out.String(), msg) {
				t.Fatalf("s_server received %q although send failed", msg)
			}
		})
	}
}
