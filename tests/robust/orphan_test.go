package robust

import (
	"crypto/tls"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/e2e"

	"github.com/tlspin/tlspin/internal/wait"
)

// assertPluginsGone waits a bounded time for every plugin to be gone.
func assertPluginsGone(t *testing.T, plugins []int) {
	t.Helper()
	for _, pid := range plugins {
		if !wait.Until(5*time.Second, func() bool { return !e2e.Alive(pid) }) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("plugin %d outlived its host", pid)
		}
	}
}

// TestNoOrphansFromServe starts `tlspin serve` with two verifier plugins,
// ends it in each way a host can end, and checks that no plugin survives.
func TestNoOrphansFromServe(t *testing.T) {
	dir := t.TempDir()
	srv := e2e.NewIdentity(t, dir, "server")
	client := e2e.NewIdentity(t, dir, "client")
	tests := []struct {
		name     string
		once     bool
		sig      syscall.Signal
		wantCode int // -1: killed, not checked
	}{
		{"SIGINT", false, syscall.SIGINT, 0},
		{"SIGTERM", false, syscall.SIGTERM, 0},
		{"SIGKILL", false, syscall.SIGKILL, -1},
		{"normal exit (--once)", true, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"--cert", srv.File, "--verifier", "spkipin:pin=" + client.SPKI(), "--verifier", "sha256pin:pin=" + client.SHA256()}
			if tc.once {
				args = append(args, "--once")
			}
			s := e2e.StartServe(t, args...)
			plugins := e2e.WaitPlugins(t, s.Cmd.Process.Pid, 2)
			if tc.once {
				if !handshake(s.Addr, client.Cert, "the one connection") {
					t.Fatal("the one client was refused")
				}
			} else if err := s.Cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			code := s.Wait(t, 10*time.Second)
			if tc.wantCode >= 0 && code != tc.wantCode {
				t.Errorf("serve exited %d, want %d", code, tc.wantCode)
			}
			assertPluginsGone(t, plugins)
		})
	}
}

// stallingServer accepts TCP connections and answers TLS only once
// release is closed, so that a client stays in its handshake meanwhile.
func stallingServer(t *testing.T, cert tls.Certificate, release <-chan struct{}) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return e2e.Serve(t, ln, func(c net.Conn) {
		select {
		case <-release:
		case <-time.After(30 * time.Second):
			return
		}
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, tc)
	})
}

// TestNoOrphansFromSend runs `tlspin send` against a server that holds the
// handshake, ends send in each way, and checks that its plugin is gone.
func TestNoOrphansFromSend(t *testing.T) {
	dir := t.TempDir()
	srv := e2e.NewIdentity(t, dir, "server")
	tests := []struct {
		name string
		sig  syscall.Signal // 0: let the handshake finish, normal exit
	}{
		{"SIGINT", syscall.SIGINT},
		{"SIGTERM", syscall.SIGTERM},
		{"SIGKILL", syscall.SIGKILL},
		{"normal exit", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			addr := stallingServer(t, srv.Cert, release)
			p := e2e.StartTlspin(t, nil, "send", "--timeout", "20s", "--verifier", "spkipin", "--pin", srv.SPKI(), addr, "hello")
			plugins := e2e.WaitPlugins(t, p.Cmd.Process.Pid, 1)
			if tc.sig == 0 {
				close(release)
				if code := p.Wait(t, 10*time.Second); code != 0 {
					t.Errorf("send exited %d, want 0", code)
				}
			} else {
				if err := p.Cmd.Process.Signal(tc.sig); err != nil {
					t.Fatal(err)
				}
				p.Wait(t, 10*time.Second)
			}
			assertPluginsGone(t, plugins)
		})
	}
}
