package conformance

import "syscall"

// sysProcAttr puts the plugin in its own process group, so that it and its
// children are killed together, and has the kernel kill it if the checker
// dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
