package host

import "syscall"

// sysProcAttr puts the plugin in its own process group (so that it and its
// children can be killed together and a terminal's ^C reaches only the
// host, which then stops it) and asks the kernel to kill it if the host dies.
//
// The kernel sends the parent-death signal when the thread that forked the
// plugin exits, not the process. The Go runtime only ends threads that a
// goroutine locked and left locked, and plugins are never started from such
// a goroutine, so in practice the thread lives as long as the host. The
// SDK's parent watch (core/sdk) is the backstop.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
