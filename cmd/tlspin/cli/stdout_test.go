package cli_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// fullStdout is a stdout on a full disk: every write fails, as one to
// /dev/full does.
type fullStdout struct{}

func (fullStdout) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}
}

// TestServeStopsWhenStdoutFails: serve's job is to print what it
// receives. When stdout cannot take a line (a full disk), serve resets
// that client's connection, so that the client sees an error rather than
// a clean close, stops by itself and exits 1, saying why. It used to drop
// the line, close the connection cleanly, go on serving and exit 0.
func TestServeStopsWhenStdoutFails(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"lines", nil},
		{"json", []string{"--json"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srvFile, _ := identityFile(t, t.TempDir(), "server")
			ctx, cancel := context.WithCancel(context.Background())
			stderr := &syncbuf.Buffer{}
			env := cli.Env{Stdin: strings.NewReader(""), Stdout: fullStdout{}, Stderr: stderr, Getenv: func(string) string { return "" }}
			code := make(chan int, 1)
			go func() {
				code <- cli.RunContext(ctx, env, append([]string{"serve", "--listen", "127.0.0.1:0", "--cert", srvFile}, tt.args...))
			}()
			t.Cleanup(func() { cancel(); <-code })
			var m []string
			if !wait.Until(20*time.Second, func() bool {
				m = proxyListening.FindStringSubmatch(stderr.String())
				return m != nil
			}) {
				t.Fatalf("serve did not start:\n%s", stderr)
			}
			c, _ := dialLeaf(t, m[1])
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			_, err := io.WriteString(c, "important line\n")
			if err == nil {
				err = c.CloseWrite()
			}
			if err == nil {
				_, err = io.Copy(io.Discard, c)
			}
			if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
				t.Errorf("the client saw %v, want a reset", err)
			}
			select {
			case got := <-code:
				code <- got // for the cleanup
				if got != cli.ExitFailure {
					t.Errorf("exit %d, want %d", got, cli.ExitFailure)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("serve still runs 10s after stdout failed:\n%s", stderr)
			}
			if !strings.Contains(stderr.String(), "tlspin: server: cannot write to the output, stopped serving: write /dev/stdout: no space left on device") {
				t.Errorf("stderr does not say why serve stopped:\n%s", stderr)
			}
		})
	}
}

// TestServeToDevFull is the case as a user meets it: tlspin serve with
// its stdout on /dev/full, and tlspin send, real processes. send must not
// exit 0 as if its line had been taken, and serve must exit 1 saying why.
func TestServeToDevFull(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	srvFile, pin := identityFile(t, t.TempDir(), "server")
	cmd := exec.Command(testbin.Tlspin(t), "--log-level", "info", "serve", "--listen", "127.0.0.1:0", "--cert", srvFile, "--once")
	cmd.Stdout = full
	p := startLogged(t, cmd)
	log := p.logged(t, "listening: addr=")
	addr := proxyListening.FindStringSubmatch(log)[1]
	if _, stderr, code := run(t, "send", "--verifier", "spkipin", "--pin", pin, addr, "important line"); code == cli.ExitOK {
		t.Errorf("send exited 0, its line lost:\n%s", stderr)
	}
	if code := p.exit(t, "send"); code != cli.ExitFailure {
		t.Errorf("serve exited %d, want %d", code, cli.ExitFailure)
	}
	if s := p.stderr.String(); !strings.Contains(s, "no space left on device") {
		t.Errorf("serve's stderr does not name the error:\n%s", s)
	}
}

// TestFailedStdoutFails: a command whose result cannot be written to
// stdout (a full disk) exits 1 naming the error, whichever way it prints.
// fingerprint, known-pins list, cert and --help used to exit 0 with their
// output lost, while fingerprint --json and version failed.
func TestFailedStdoutFails(t *testing.T) {
	dir := t.TempDir()
	certFile, pin := identityFile(t, dir, "server")
	pins := filepath.Join(dir, "known_pins")
	if _, stderr, code := inProcess(t, "", "known-pins", "--file", pins, "add", "localhost:8081", pin); code != cli.ExitOK {
		t.Fatalf("known-pins add: exit %d: %s", code, stderr)
	}
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"fingerprint", []string{"fingerprint", certFile}},
		{"fingerprint json", []string{"fingerprint", "--json", certFile}},
		{"known-pins list", []string{"known-pins", "--file", pins, "list"}},
		{"cert", []string{"cert", "--out", filepath.Join(dir, "new.pem")}},
		{"version", []string{"version"}},
		{"help", []string{"--help"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			env := cli.Env{Stdin: strings.NewReader(""), Stdout: fullStdout{}, Stderr: &stderr, Getenv: func(string) string { return "" }}
			if code := cli.RunContext(context.Background(), env, tt.args); code != cli.ExitFailure {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, cli.ExitFailure, &stderr)
			}
			if !strings.Contains(stderr.String(), "write /dev/stdout: no space left on device") {
				t.Errorf("stderr does not name the error:\n%s", &stderr)
			}
		})
	}
}
