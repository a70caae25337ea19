package cli

import (
	"math"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// keepPluginsOut keeps what tlspin holds from the verifier plugins it
// starts, which run as its user.
//
// It makes this process non-dumpable (PR_SET_DUMPABLE 0), as ssh-agent
// does: its /proc files (fd/, environ, mem...) then belong to root, and
// neither they nor ptrace are open to processes of its user without
// CAP_SYS_PTRACE. A plugin is given /dev/null for its standard input and
// four of tlspin's environment variables, but through /proc/PPID/fd/0 it
// read the message piped into `tlspin send` (racing tlspin for it),
// through /proc/PPID/environ the whole environment, and through
// /proc/PPID/mem tlspin's memory, keys included. The plugins themselves
// are dumpable again once executed. It also means that tlspin leaves no
// core dump, and that a debugger or strace attaches to it only as root
// (or started with tlspin under it).
//
// And it marks every descriptor tlspin inherited beyond stderr
// close-on-exec: Go's exec closes none that are not, and a descriptor
// tlspin's parent left open (a script's `3<`, a supervisor's pipe) went
// to every plugin. tlspin passes a plugin what it means to explicitly
// (exec.Cmd.ExtraFiles), which close-on-exec does not touch.
func keepPluginsOut() {
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	if unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	// Before Linux 5.11.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}
