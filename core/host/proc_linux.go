package host

import (
	"strconv"
	"syscall"
)

// sysProcAttr puts the plugin in its own process group (so that it and its
// children can be killed together and a terminal's ^C reaches only the
// host, which then stops it) and asks the kernel to kill it if the host dies.
//
// What the host guarantees, and what it cannot:
//
//   - Close, a failed start, a restart, and a host that exits normally kill
//     the plugin's whole process group: the plugin and every child that
//     stayed in its group.
//   - If the host itself is killed (SIGKILL, a crash), only the kernel is
//     left to act: it sends the plugin its parent-death signal (SIGKILL),
//     but the plugin's children are not signalled. A plugin built with the
//     Go SDK turns that signal into SIGTERM and kills its own group
//     (core/sdk, watchHost). Any other plugin must see to its children
//     itself (Linux: prctl(PR_SET_PDEATHSIG) in each child, or the same
//     SIGTERM trick), or they outlive the host.
//   - A child that leaves the group (setsid, setpgid) escapes every one of
//     these.
//
// The kernel sends the parent-death signal when the thread that forked the
// plugin exits, not the process. The Go runtime only ends threads that a
// goroutine locked and left locked, and plugins are never started from such
// a goroutine, so in practice the thread lives as long as the host. The
// SDK's parent watch is the backstop.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the process group led by pid. The group outlives its
// leader while it has members, and its id is not reused meanwhile.
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// fdExecPath names, for the kernel in the child, its open file descriptor
// fd, so that exec runs that file.
func fdExecPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }
