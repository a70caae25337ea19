package host

import "syscall"

// sysProcAttr puts the plugin in its own process group (so that it and its
// children can be killed together and a terminal's ^C reaches only the
// host, which then stops it) and asks the kernel to kill it if the host dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
