package testbin

import (
	"bufio"
	"os/exec"
	"testing"
)

// StartLine starts cmd, which the test's end kills and reaps, and returns
// the first line it writes on stdout (empty if it ends without one): the
// line a program prints once it is ready.
func StartLine(t testing.TB, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	return line
}
