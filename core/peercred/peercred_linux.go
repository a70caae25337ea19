package peercred

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
)

const supported = true

func euid() int { return os.Geteuid() }

// getppid is os.Getppid; a test makes it answer as a process whose parent
// is outside its pid namespace would (0).
var getppid = os.Getppid

// Of asks the kernel who is at the other end of a unix socket: for the
// connecting side, the process that listened; for the listening side, the
// process that connected.
func Of(conn net.Conn) (Cred, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return Cred{}, fmt.Errorf("%w: %T is not a unix socket", ErrPeer, conn)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Cred{}, fmt.Errorf("%w: %w", ErrPeer, err)
	}
	var (
		cred *syscall.Ucred
		gerr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, gerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return Cred{}, fmt.Errorf("%w: %w", ErrPeer, err)
	}
	if gerr != nil {
		return Cred{}, fmt.Errorf("%w: SO_PEERCRED: %w", ErrPeer, gerr)
	}
	return Cred{PID: int(cred.Pid), UID: int(cred.Uid), Path: uc.RemoteAddr().String()}, nil
}

// pgidOf is the process group of pid, or -1.
func pgidOf(pid int) int {
	g, err := syscall.Getpgid(pid)
	if err != nil {
		return -1
	}
	return g
}

// isAncestor reports whether pid is this process's parent, or its parent's
// parent, and so on up to init, which may be the host itself (tlspin as a
// container's entrypoint).
//
// pid 0 is never an ancestor: SO_PEERCRED reports 0 for a process outside
// this pid namespace, and Getppid and /proc report 0 for a parent outside
// it, so comparing before refusing it would accept any such process. -1 is
// parentOf's "unknown".
func isAncestor(pid int) bool {
	if pid <= 0 {
		return false
	}
	p := getppid()
	for range 64 {
		if p <= 0 {
			return false
		}
		// Compared before stopping at init: the host may be pid 1.
		if p == pid {
			return true
		}
		if p == 1 {
			return false
		}
		p = parentOf(p)
	}
	return false
}

// parentOf reads the parent of pid from /proc/PID/stat, or -1.
func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return -1
	}
	n, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return -1
	}
	return n
}
