//go:build unix && !linux

package host

import (
	"strconv"
	"syscall"
)

// sysProcAttr puts the plugin in its own process group. Without a
// parent-death signal, plugins built with the SDK exit when their parent
// changes.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup kills the process group led by pid. The group outlives its
// leader while it has members, and its id is not reused meanwhile.
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// ExecPath names, for the kernel in the child, its open file descriptor
// fd (an exec.Cmd's ExtraFiles[fd-3]), so that exec runs that very file
// (fdescfs on the BSDs, devfs on macOS).
func ExecPath(fd int) string { return "/dev/fd/" + strconv.Itoa(fd) }

// startWithTimerSlack runs start: only Linux lets a process give its
// children a timer slack.
func startWithTimerSlack(start func() error) error { return start() }

// exitedUnreaped reports whether the child pid has exited, without
// reaping it; here it cannot tell, and says no.
func exitedUnreaped(int) bool { return false }
