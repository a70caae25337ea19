package direct

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

// quiet returns c's reads and writes made with raw system calls, when c
// has a file descriptor: see rawIO.
func quiet(c io.ReadWriter) io.ReadWriter {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return rawIO{rc}
}

// rawIO reads and writes a non-blocking descriptor (a connection's pipe)
// with raw system calls, waiting for it through the runtime's poller as
// os.File and net.Conn do (deadlines and Close included). A non-blocking
// read or write never blocks, so it need not tell the scheduler it enters
// a system call; telling it, as every os.File and net.Conn read and write
// does, wakes the runtime's monitor thread (sysmon) whenever the process
// was idle: in a plugin that sleeps between calls, one more context
// switch or two per call.
type rawIO struct{ rc syscall.RawConn }

func (r rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var (
		n     uintptr
		errno syscall.Errno
	)
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			n, _, errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			if errno != syscall.EINTR {
				return errno != syscall.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	raceAcquire()
	return int(n), nil
}

func (r rawIO) Write(p []byte) (int, error) {
	raceReleaseMerge()
	done := 0
	for done < len(p) {
		var (
			n     uintptr
			errno syscall.Errno
		)
		err := r.rc.Write(func(fd uintptr) bool {
			for {
				n, _, errno = syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[done])), uintptr(len(p)-done))
				if errno != syscall.EINTR {
					return errno != syscall.EAGAIN
				}
			}
		})
		if err != nil {
			return done, err
		}
		if errno != 0 {
			return done, os.NewSyscallError("write", errno)
		}
		done += int(n)
	}
	return done, nil
}
