package builtinplugin_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/direct"
	"github.com/tlspin/tlspin/core/plugproc"
	"github.com/tlspin/tlspin/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// tlspin-builtins starts no processes, so it does not catch SIGTERM
// (plugproc.WatchParent, not WatchHost): catching it costs the runtime a
// thread while the first call waits, and its default action ends the
// plugin as well. Caught, it would end by its group's SIGKILL instead.
func TestSIGTERMEndsBuiltinsByDefault(t *testing.T) {
	bin := filepath.Join(filepath.Dir(testbin.Tlspin(t)), "tlspin-builtins")
	cmd, ch := command(t, bin, "sha256pin")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if _, err := direct.ParseHandshake(testbin.StartLine(t, cmd)); err != nil {
		t.Fatal(err)
	}
	// A call answered: the plugin has run past where it would catch.
	c := direct.NewClient(ch, 1)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Describe(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("wait: %v", err)
		}
		ws := ee.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Errorf("tlspin-builtins ended with %v, want killed by SIGTERM", ee)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tlspin-builtins outlived SIGTERM")
	}
}

// command is tlspin-builtins serving verifier name to this process, as a
// host starts it, and the host's end of its channel.
func command(t *testing.T, bin, name string) (*exec.Cmd, *net.UnixConn) {
	t.Helper()
	ch, theirs, err := direct.NewChannel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close(); theirs.Close() })
	cmd := exec.Command(bin, name)
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Env = []string{plugproc.CookieKey + "=" + plugproc.CookieValue, direct.EnvChannel + "=3", "GOMAXPROCS=1"}
	return cmd, ch
}

// tlspin-builtins serves only a channel its host gave it: a socket that
// the process which started it made. Anything else ends it before its
// handshake line, saying why.
func TestRefusesAChannelNotGiven(t *testing.T) {
	bin := filepath.Join(filepath.Dir(testbin.Tlspin(t)), "tlspin-builtins")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	tests := []struct {
		name  string
		env   string
		files []*os.File
		says  string
	}{
		{"no channel named", "", nil, `$TLSPIN_PLUGIN_CHANNEL_FD="": want the descriptor of the channel the host gives`},
		{"stdin named", "0", nil, `$TLSPIN_PLUGIN_CHANNEL_FD="0"`},
		{"nothing inherited", "3", nil, "descriptor 3 ($TLSPIN_PLUGIN_CHANNEL_FD) is not a socket"},
		{"a pipe", "3", []*os.File{r}, "descriptor 3 ($TLSPIN_PLUGIN_CHANNEL_FD) is not a socket"},
		{"a socket another process made", "3", []*os.File{strangerSocket(t)}, "is not the host that started this plugin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Bounded: a plugin that took the channel would serve it.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "md5pin")
			cmd.ExtraFiles = tc.files
			cmd.Env = []string{plugproc.CookieKey + "=" + plugproc.CookieValue, direct.EnvChannel + "=" + tc.env}
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v; want status 1", err)
			}
			if !strings.Contains(stderr.String(), tc.says) || stdout.Len() > 0 {
				t.Errorf("stdout %q, stderr %q; want no handshake line and stderr saying %q", stdout.String(), stderr.String(), tc.says)
			}
		})
	}
}

// strangerSocket is a connected unix socket whose other end was made by
// a process that is neither this one nor an ancestor of its children:
// what a channel handed on by someone else would look like.
func strangerSocket(t *testing.T) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	py := exec.Command("python3", "-c", `import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen()
print("ready", flush=True)
c, _ = s.accept()
c.recv(1)`, path)
	if testbin.StartLine(t, py) != "ready\n" {
		t.Fatal("python3 listener did not start")
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f, err := c.(*net.UnixConn).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
