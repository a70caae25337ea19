package plugproc

import (
	"os"
	"syscall"
)

// A tlspin host starts each plugin in its own process group with the
// parent-death signal SIGKILL: if the host dies, the kernel kills the
// plugin, but not the children the plugin started, which nobody is left to
// kill. A plugin that links this package swaps the signal for SIGTERM, which
// WatchHost catches to kill its whole group before exiting (a plugin with
// no children, under WatchParent, lets SIGTERM end it).
//
// This runs in init because the parent-death signal belongs to the thread
// the host forked, the program's main thread, and Go runs init functions
// on the main thread (later code may run on any thread). It does anything
// only in a process started as a plugin (the handshake's magic cookie is
// set) that leads its own process group, as a host starts it.
func init() {
	if !StartedByHost() || syscall.Getpgrp() != os.Getpid() {
		return
	}
	const prSetPdeathsig = 1
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetPdeathsig, uintptr(syscall.SIGTERM), 0)
}
