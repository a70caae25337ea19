//go:build unix

package plugproc

import (
	"os"
	"syscall"
)

// termSignal is the signal that ends a plugin and its process group.
var termSignal os.Signal = syscall.SIGTERM

// killOwnGroup kills the process group the plugin leads, the plugin
// included; it does nothing when the plugin does not lead its group.
func killOwnGroup() {
	if pg := syscall.Getpgrp(); pg == os.Getpid() {
		_ = syscall.Kill(-pg, syscall.SIGKILL)
	}
}
