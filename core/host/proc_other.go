//go:build unix && !linux

package host

import "syscall"

// sysProcAttr puts the plugin in its own process group. Without a
// parent-death signal, plugins built with the SDK exit when their parent
// changes.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
