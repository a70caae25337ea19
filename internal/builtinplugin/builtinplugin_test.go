package builtinplugin_test

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
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
	dir := t.TempDir()
	cmd := exec.Command(bin, "sha256pin")
	cmd.Env = []string{plugproc.CookieKey + "=" + plugproc.CookieValue, direct.EnvSocketDir + "=" + dir, "GOMAXPROCS=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	path, err := direct.ParseHandshake(testbin.StartLine(t, cmd))
	if err != nil {
		t.Fatal(err)
	}
	// A call answered: the plugin has run past where it would catch.
	c := direct.NewClient(func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}, 1)
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
