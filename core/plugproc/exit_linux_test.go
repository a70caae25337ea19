package plugproc

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/testbin"
)

// TestExited: exited waits on a process's descriptor until the process
// exits, and no longer.
func TestExited(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envWatch+"=sleep")
	if line := testbin.StartLine(t, cmd); line != "sleeping\n" {
		t.Fatalf("sleeper did not start: %q", line)
	}
	f, err := openExit(cmd.Process.Pid)
	if err != nil {
		t.Fatalf("%v (process descriptors need Linux 5.3)", err)
	}
	done := make(chan bool, 1)
	go func() { done <- exited(f) }()
	select {
	case ok := <-done:
		t.Fatalf("exited returned %v while the process runs", ok)
	case <-time.After(100 * time.Millisecond):
	}
	cmd.Process.Kill()
	cmd.Wait()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("exited could not tell that the process exited")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exited still waiting 10 s after the process was killed")
	}
}

// TestParentGone: a parent that is not the plugin's is gone, at once or
// when polled; the plugin's own is not.
func TestParentGone(t *testing.T) {
	select {
	case <-parentGone(os.Getpid() + 1<<20):
	case <-time.After(10 * time.Second):
		t.Fatal("a parent that is not ours is not gone")
	}
	select {
	case <-pollParent(os.Getpid() + 1<<20):
	case <-time.After(10 * time.Second):
		t.Fatal("polled, a parent that is not ours is not gone")
	}
	select {
	case <-parentGone(os.Getppid()):
		t.Fatal("our living parent is gone")
	case <-time.After(100 * time.Millisecond):
	}
}

// TestOrphaned: a watcher whose parent really exits ends, seen through
// the parent's descriptor (not a ppid given to fake it, as TestWatch does).
func TestOrphaned(t *testing.T) {
	middle := exec.Command(os.Args[0], "-test.run=^$")
	// Without the race detector's second of grace at exit.
	middle.Env = append(os.Environ(), envWatch+"=middle", "GORACE=atexit_sleep_ms=0")
	line := testbin.StartLine(t, middle)
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("middle process: %q", line)
	}
	f, err := openExit(pid) // before the middle process is reaped: the watcher still runs
	if err != nil {
		t.Fatal(err)
	}
	if err := middle.Wait(); err != nil {
		t.Fatal(err)
	}
	done := make(chan bool, 1)
	go func() { done <- exited(f) }()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("could not tell whether the watcher ended")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the orphaned watcher still runs 10 s after its parent exited")
	}
}
