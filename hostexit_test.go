//go:build linux

package tlspin_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// envHostExit makes the test binary a program that starts a verifier,
// prints "started" and, once its standard input ends, exits without
// calling Close, as log.Fatal or os.Exit after Start does.
const envHostExit = "TLSPIN_TEST_HOST_EXIT"

// TestHostExitLeavesNoSocketDir ends a program whose verifier runs over
// go-plugin (a ServeBuiltin program) without Close, and checks that the
// plugin's socket directory (plugin-dir* in $TMPDIR) does not outlive it:
// the host removes it in Close, and a host that never got there must not
// leave one directory per verifier per run behind.
func TestHostExitLeavesNoSocketDir(t *testing.T) {
	if os.Getenv(envHostExit) != "" {
		v, err := tlspin.Start(context.Background(), "spkipin:pin="+newIdentity("server").spki)
		if err != nil {
			t.Fatal(err)
		}
		_ = v
		os.Stdout.WriteString("started\n")
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	tests := []struct {
		name string
		end  func(*exec.Cmd, io.Closer)
	}{
		{"os.Exit without Close", func(_ *exec.Cmd, stdin io.Closer) { stdin.Close() }},
		{"SIGKILL", func(cmd *exec.Cmd, _ io.Closer) { cmd.Process.Signal(syscall.SIGKILL) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHostExitLeavesNoSocketDir$")
			cmd.Env = append(os.Environ(), envHostExit+"=1", "TMPDIR="+tmp)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if line := testbin.StartLine(t, cmd); line != "started\n" {
				t.Fatalf("host did not start: %q", line)
			}
			dirs := func() []string {
				m, _ := filepath.Glob(filepath.Join(tmp, "plugin-dir*"))
				return m
			}
			if len(dirs()) == 0 {
				t.Fatalf("no plugin-dir* in %s while the verifier runs: the test checks nothing", tmp)
			}
			tc.end(cmd, stdin)
			cmd.Wait()
			if !wait.Until(5*time.Second, func() bool { return len(dirs()) == 0 }) {
				t.Errorf("socket directories outlived their host: %v", dirs())
			}
		})
	}
}
