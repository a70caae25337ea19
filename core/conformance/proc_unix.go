//go:build unix

package conformance

import "syscall"

// killGroup ends the plugin and everything it started (it runs in its own
// process group, see sysProcAttr).
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
