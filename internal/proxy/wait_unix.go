//go:build unix

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// waitReadable blocks until c has a byte to read, an end of stream or an
// error pending, or its read deadline passes, without reading: it peeks
// (MSG_PEEK) through the runtime's poller. A pending socket error (a reset)
// is reported only once by the kernel, so it is returned here, as a read
// would have.
func waitReadable(c syscall.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var (
		one  [1]byte
		perr error
	)
	if err := rc.Read(func(fd uintptr) bool {
		_, _, perr = syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return !errors.Is(perr, syscall.EAGAIN)
	}); err != nil {
		return err
	}
	if perr != nil {
		return &net.OpError{Op: "read", Net: "tcp", Err: perr}
	}
	return nil
}
