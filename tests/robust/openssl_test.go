package robust

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/e2e"

	"github.com/tlspin/tlspin/internal/wait"
)

// TestOpenSSLClientAgainstServe uses real `openssl s_client` as the client
// of `tlspin serve --verifier spkipin`, with the trusted certificate, an
// untrusted one and none; and against a server without a verifier.
func TestOpenSSLClientAgainstServe(t *testing.T) {
	openssl := e2e.NeedOpenSSL(t)
	dir := t.TempDir()
	srv := e2e.NewIdentity(t, dir, "server")
	good := e2e.NewIdentity(t, dir, "good")
	bad := e2e.NewIdentity(t, dir, "bad")
	tests := []struct {
		name     string
		verifier bool
		cert     *e2e.Identity
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
			args := []string{"--cert", srv.File}
			if tc.verifier {
				args = append(args, "--verifier", "spkipin", "--pin", good.SPKI())
			}
			s := e2e.StartServe(t, args...)
			msg := "hello from openssl s_client"
			cargs := []string{"s_client", "-connect", s.Addr, "-quiet", "-no_ign_eof", "-verify_quiet"}
			if tc.cert != nil {
				cargs = append(cargs, "-cert", tc.cert.File, "-key", tc.cert.File)
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
				if !wait.Until(5*time.Second, func() bool { return s.Stdout.String() == msg+"\n" }) {
					t.Fatalf("serve printed %q, want %q\ns_client:\n%s", s.Stdout, msg+"\n", out.String())
				}
				return
			}
			if !wait.Until(5*time.Second, func() bool { return strings.Contains(s.Stderr.String(), "client rejected") }) {
				t.Fatalf("no rejection logged:\n%s", s.Stderr)
			}
			if tc.cert != nil && !strings.Contains(s.Stderr.String(), "peer_sha256="+tc.cert.SHA256()) {
				t.Errorf("rejection not logged with the client's fingerprint:\n%s", s.Stderr)
			}
			time.Sleep(100 * time.Millisecond) // anything printed would be printed by now
			if s.Stdout.String() != "" {
				t.Fatalf("serve printed %q from a rejected client", s.Stdout)
			}
		})
	}
}

// TestSendAgainstOpenSSLServer uses real `openssl s_server` as the server
// of `tlspin send`: pinned and presenting a client certificate when the
// server requires one.
func TestSendAgainstOpenSSLServer(t *testing.T) {
	dir := t.TempDir()
	srv := e2e.NewIdentity(t, dir, "server")
	client := e2e.NewIdentity(t, dir, "client")
	other := e2e.NewIdentity(t, dir, "other")
	tests := []struct {
		name     string
		sargs    []string
		pin      string
		cert     *e2e.Identity
		wantCode int
		received bool
	}{
		{"pinned, no client certificate asked", nil, srv.SPKI(), nil, 0, true},
		{"pinned, client certificate required", []string{"-Verify", "1"}, srv.SPKI(), &client, 0, true},
		{"client certificate required, none given", []string{"-Verify", "1"}, srv.SPKI(), nil, 1, false},
		{"wrong pin: nothing sent", nil, other.SPKI(), nil, 3, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, out := e2e.StartSServer(t, append([]string{"-cert", srv.File, "-key", srv.File}, tc.sargs...)...)
			msg := "hello s_server from tlspin"
			args := []string{"send", "--log-level", "error", "--verifier", "spkipin", "--pin", tc.pin}
			if tc.cert != nil {
				args = append(args, "--cert", tc.cert.File)
			}
			code, _, stderr := e2e.RunTlspin(t, append(args, addr, msg)...)
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
