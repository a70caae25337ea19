package cli_test

import (
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/testbin"
)

// TestInterruptedCommandsFail: a command stopped by SIGINT or SIGTERM
// before it finished exits 128 plus the signal's number, as a shell
// reports it, and says it was interrupted: scripts must not take an
// interrupted send for a delivered message. It used to exit 1 with
// "context canceled" dressed as a timeout, or 0, and a send reading its
// message from a terminal or a pipe ignored the signal until more input
// came.
func TestInterruptedCommandsFail(t *testing.T) {
	bin := testbin.Tlspin(t)
	hold := make(chan struct{})
	defer close(hold)
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "held", SANs: []string{"localhost"}, Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{c.Raw}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	// Reads what comes, never answers, never closes.
	addr := e2e.Serve(t, ln, func(conn net.Conn) { go io.Copy(io.Discard, conn); <-hold })
	sum := md5.Sum(c.Raw)
	pin := hex.EncodeToString(sum[:])
	for _, tt := range []struct {
		name  string
		args  []string
		stdin bool // a pipe that stays open, with nothing in it
		sig   syscall.Signal
		code  int
	}{
		{"send waiting for the reply", []string{"send", "--idle-timeout", "1h", "--verifier", "md5pin", "--pin", pin, addr, "hi"}, false, syscall.SIGINT, 130},
		{"send waiting for its message", []string{"send", "--verifier", "md5pin", "--pin", pin, addr}, true, syscall.SIGINT, 130},
		{"send, SIGTERM", []string{"send", "--idle-timeout", "1h", "--verifier", "md5pin", "--pin", pin, addr, "hi"}, false, syscall.SIGTERM, 143},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = append(os.Environ(), "TLSPIN_PLUGIN_PATH=")
			if tt.stdin {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				cmd.Stdin = r
				defer r.Close()
			}
			p := startLogged(t, cmd)
			// Interrupt once the server is verified: the command is then
			// sending or waiting.
			p.logged(t, "verified the server")
			cmd.Process.Signal(tt.sig)
			if code := p.exit(t, tt.sig.String()); code != tt.code || !strings.Contains(p.stderr.String(), "tlspin: interrupted (") {
				t.Fatalf("exit %d, want %d and 'interrupted'; stderr:\n%s", code, tt.code, p.stderr.String())
			}
		})
	}
}

// TestInterruptedCertWritesNothing: SIGINT stops tlspin cert while it
// makes a key that takes a minute (RSA 8192): it exits 130 at once and
// writes no file. It used to ignore the signal, write the file and exit 0.
func TestInterruptedCertWritesNothing(t *testing.T) {
	bin := testbin.Tlspin(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "big.pem")
	p := startLogged(t, exec.Command(bin, "cert", "--out", out, "--type", "rsa", "--bits", "8192"))
	p.logged(t, "generating a 8192-bit RSA key")
	p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.exit(t, "SIGINT"); code != 130 || !strings.Contains(p.stderr.String(), "tlspin: interrupted (SIGINT)") {
		t.Fatalf("exit %d, want 130 and 'interrupted'; stderr:\n%s", code, p.stderr.String())
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an interrupted cert left %s behind (stat: %v)", out, err)
	}
}

// TestSecondSignalEndsServe: a second SIGINT ends a serve that is waiting
// out --grace for a connected client at once, exiting 130, also when
// tlspin started with SIGINT ignored (a background job of a script, nohup):
// restoring the default action then restored "ignore", and the second
// signal waited out the grace period.
func TestSecondSignalEndsServe(t *testing.T) {
	bin := testbin.Tlspin(t)
	dir := t.TempDir()
	certFile := filepath.Join(dir, "cert.pem")
	if out, err := exec.Command(bin, "cert", "--type", "ecdsa", "--out", certFile).CombinedOutput(); err != nil {
		t.Fatalf("cert: %v\n%s", err, out)
	}
	for _, tt := range []struct {
		name    string
		ignored bool
	}{
		{"SIGINT handled at start", false},
		{"SIGINT ignored at start", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"serve", "--cert", certFile, "--listen", "127.0.0.1:0", "--grace", "1h"}
			cmd := exec.Command(bin, args...)
			if tt.ignored {
				cmd = exec.Command("/bin/sh", append([]string{"-c", `trap '' INT; exec "$0" "$@"`, bin}, args...)...)
			}
			cmd.Env = append(os.Environ(), "TLSPIN_PLUGIN_PATH=")
			p := startLogged(t, cmd)
			log := p.logged(t, "listening: addr=")
			addr := strings.Fields(log[strings.Index(log, "listening: addr=")+len("listening: addr="):])[0]
			conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			p.logged(t, "client connected")
			cmd.Process.Signal(syscall.SIGINT)
			p.logged(t, "letting open connections finish")
			cmd.Process.Signal(syscall.SIGINT)
			if code := p.exit(t, "a second SIGINT"); code != 130 {
				t.Fatalf("exit %d, want 130; stderr:\n%s", code, p.stderr.String())
			}
		})
	}
}

// running is a tlspin process whose stderr is kept.
type running struct {
	cmd    *exec.Cmd
	stderr syncbuf.Buffer
	done   chan error
}

// startLogged starts cmd, keeping its stderr; it is killed at the end of
// the test if it still runs.
func startLogged(t *testing.T, cmd *exec.Cmd) *running {
	t.Helper()
	p := &running{cmd: cmd, done: make(chan error, 1)}
	cmd.Stderr = &p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { p.done <- cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	return p
}

// logged waits up to 20 s for stderr to say what, and returns it then.
func (p *running) logged(t *testing.T, what string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s := p.stderr.String(); strings.Contains(s, what) {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never logged %q; stderr:\n%s", what, p.stderr.String())
	return ""
}

// exit waits up to 10 s, after what was done to the process, for it to
// exit, and returns its exit code.
func (p *running) exit(t *testing.T, after string) int {
	t.Helper()
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after %s; stderr:\n%s", after, p.stderr.String())
		return 0
	}
}
