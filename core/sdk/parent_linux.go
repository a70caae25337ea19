package sdk

import (
	"os"
	"syscall"

	"github.com/tlspin/tlspin/core/rpc"
)

// A tlspin host starts each plugin in its own process group with the
// parent-death signal SIGKILL: if the host dies, the kernel kills the
// plugin, but not the children the plugin started, which nobody is left to
// kill. A plugin built with the SDK swaps the signal for SIGTERM, which
// watchHost catches to kill its whole group before exiting.
//
// This runs in init because the parent-death signal belongs to the thread
// the host forked, the program's main thread, and Go runs init functions
// on the main thread (later code may run on any thread). It does anything
// only in a process started as a plugin (the handshake's magic cookie is
// set) that leads its own process group, as a host starts it.
func init() {
	if os.Getenv(rpc.Handshake.MagicCookieKey) != rpc.Handshake.MagicCookieValue || syscall.Getpgrp() != os.Getpid() {
		return
	}
	const prSetPdeathsig = 1
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetPdeathsig, uintptr(syscall.SIGTERM), 0)
}
