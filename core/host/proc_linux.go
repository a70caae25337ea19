package host

import (
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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

// ExecPath names, for the kernel in the child, its open file descriptor
// fd (an exec.Cmd's ExtraFiles[fd-3]), so that exec runs that very file,
// whatever its name now leads to.
func ExecPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// pluginTimerSlack is the timer slack tlspin-builtins starts with
// (startWithTimerSlack).
const pluginTimerSlack = 5 * time.Millisecond

// startWithTimerSlack runs start, which forks and execs a plugin, on a
// thread whose timer slack is pluginTimerSlack, so that the plugin
// inherits it, then gives the thread back its own.
//
// Why: a Go process's monitor thread (sysmon) sleeps 20 µs at a time for
// its first milliseconds, and on a small VM each wake-up preempts the
// plugin's main thread while the runtime and packages initialise. With
// the slack, the kernel may let those sleeps run up to 5 ms, which it
// does when nothing else is due: a start of tlspin-builtins switches
// context 38-39 times instead of 62-68, and reaches its handshake line
// 0.5-1 ms sooner (docs/performance.md, fifth round). The plugin keeps
// the slack: its timers are deadlines of seconds, which may fire 5 ms
// late. No other host thread gets it: the Go runtime never clones a
// locked thread, it has its template thread start the threads it needs
// meanwhile.
func startWithTimerSlack(start func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, uintptr(pluginTimerSlack), 0); errno != 0 {
		return start()
	}
	// 0 is this thread's default slack, the one it had.
	defer syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, 0, 0)
	return start()
}

// prSetTimerSlack is PR_SET_TIMERSLACK (linux/prctl.h).
const prSetTimerSlack = 29

// exitedUnreaped reports whether the child pid has exited, without
// reaping it (go-plugin does, once the plugin's pipes have ended).
func exitedUnreaped(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil && info.Signo == int32(syscall.SIGCHLD)
}
