//go:build unix && !linux

package conformance

import "syscall"

// sysProcAttr puts the plugin in its own process group, so that it and its
// children are killed together.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
