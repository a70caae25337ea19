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

// fdExecPath names, for the kernel in the child, its open file descriptor
// fd, so that exec runs that file (fdescfs on the BSDs, devfs on macOS).
func fdExecPath(fd int) string { return "/dev/fd/" + strconv.Itoa(fd) }

// ExecPath is the path that executes the file open in the child as
// descriptor fd (an exec.Cmd's ExtraFiles[fd-3]): the very file opened,
// whatever its name now leads to.
func ExecPath(fd int) string { return fdExecPath(fd) }

// startWithTimerSlack runs start: only Linux lets a process give its
// children a timer slack.
func startWithTimerSlack(start func() error) error { return start() }
