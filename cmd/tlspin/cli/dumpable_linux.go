package cli

import "golang.org/x/sys/unix"

// keepPluginsOut makes this process non-dumpable (PR_SET_DUMPABLE 0), as
// ssh-agent does: its /proc files (fd/, environ, mem...) then belong to
// root, and neither they nor ptrace are open to processes of its user
// without CAP_SYS_PTRACE. A verifier plugin runs as tlspin's user: it is
// given /dev/null for its standard input and four of tlspin's environment
// variables, but through /proc/PPID/fd/0 it read the message piped into
// `tlspin send` (racing tlspin for it), through /proc/PPID/environ the
// whole environment, and through /proc/PPID/mem tlspin's memory, keys
// included. The plugins themselves are dumpable again once executed.
//
// It also means that tlspin leaves no core dump, and that a debugger or
// strace attaches to it only as root (or started with tlspin under it).
func keepPluginsOut() {
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
