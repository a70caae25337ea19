package plugproc

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openExit opens a descriptor of process pid (a pidfd, Linux 5.3), for
// exited. It is close-on-exec, as every pidfd is, and non-blocking, so
// that os.NewFile gives it to the runtime's poller: epoll reports a pidfd
// readable once its process has exited.
func openExit(pid int) (*os.File, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("plugproc: descriptor of process %d: %w", pid, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("plugproc: descriptor of process %d: %w", pid, err)
	}
	return os.NewFile(uintptr(fd), "pidfd"), nil
}

// exited waits, in the runtime's poller, until the process f is a
// descriptor of (openExit) has exited, and closes f. It reports false when
// it could not tell: f is not in the poller, or poll(2) failed.
func exited(f *os.File) bool {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var perr error
	// The read is a check of readiness: poll(2) without waiting, since
	// read(2) of a pidfd is an error. false waits for the poller.
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
			if err == unix.EINTR {
				continue
			}
			perr = err
			return err != nil || n > 0
		}
	})
	return err == nil && perr == nil
}
