//go:build unix

package plugproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/testbin"
)

// envWatch makes the test binary a watching plugin, "catch" or "poll", or
// a process that only sleeps, "sleep".
const envWatch = "PLUGPROC_TEST_WATCH"

// TestMain runs the watch in a child when envWatch says so, with a parent
// pid that is not its parent when PLUGPROC_TEST_PPID says so.
func TestMain(m *testing.M) {
	switch mode := os.Getenv(envWatch); mode {
	case "":
	case "sleep":
		os.Stdout.WriteString("sleeping\n")
		time.Sleep(time.Hour)
	case "middle":
		// Start a watcher of its real parent, this process, say its pid,
		// and leave it orphaned.
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envWatch+"=poll")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out, err := cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		line := make([]byte, len("watching\n"))
		if err == nil {
			_, err = io.ReadFull(out, line)
		}
		if err != nil || string(line) != "watching\n" {
			os.Stdout.WriteString(fmt.Sprintf("watcher did not start: %q %v\n", line, err))
			os.Exit(1)
		}
		os.Stdout.WriteString(strconv.Itoa(cmd.Process.Pid) + "\n")
		os.Exit(0)
	default:
		ppid := os.Getppid()
		if p, err := strconv.Atoi(os.Getenv("PLUGPROC_TEST_PPID")); err == nil {
			ppid = p
		}
		term := notify(mode == "catch")
		os.Stdout.WriteString("watching\n")
		watchWith(ppid, term)
		os.Exit(3) // it never returns
	}
	os.Exit(m.Run())
}

// startWatcher runs the test binary as a plugin watching its parent, in a
// process group of its own, and waits until it watches (its handler, if
// any, installed).
func startWatcher(t *testing.T, mode, ppid string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envWatch+"="+mode, "PLUGPROC_TEST_PPID="+ppid)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if line := testbin.StartLine(t, cmd); line != "watching\n" {
		t.Fatalf("watcher did not start: %q", line)
	}
	return cmd
}

// waitExit returns how the watcher ended: its exit code, or the signal
// that killed it.
func waitExit(t *testing.T, cmd *exec.Cmd) (int, syscall.Signal) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return -1, ws.Signal()
		}
		return ws.ExitStatus(), 0
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not end")
		return 0, 0
	}
}

func TestWatch(t *testing.T) {
	tests := []struct {
		name     string
		mode     string
		notMine  bool           // the watched parent is not the real one: orphaned
		signal   syscall.Signal // sent once it watches
		wantCode int
		wantSig  syscall.Signal
	}{
		// The watcher leads its group, so it ends by its group's SIGKILL.
		{"WatchHost: orphaned", "catch", true, 0, -1, syscall.SIGKILL},
		{"WatchHost: SIGTERM is caught, the group killed", "catch", false, syscall.SIGTERM, -1, syscall.SIGKILL},
		{"WatchParent: orphaned", "poll", true, 0, -1, syscall.SIGKILL},
		{"WatchParent: SIGTERM ends it by default", "poll", false, syscall.SIGTERM, -1, syscall.SIGTERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ppid := ""
			if tt.notMine {
				ppid = strconv.Itoa(os.Getpid() + 1<<20) // no such parent
			}
			cmd := startWatcher(t, tt.mode, ppid)
			if tt.signal != 0 {
				cmd.Process.Signal(tt.signal)
			}
			code, sig := waitExit(t, cmd)
			if code != tt.wantCode || sig != tt.wantSig {
				t.Errorf("watcher ended with code %d, signal %v; want code %d, signal %v", code, sig, tt.wantCode, tt.wantSig)
			}
		})
	}
}
