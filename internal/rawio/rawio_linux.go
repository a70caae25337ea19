package rawio

import (
	"io"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

// Quiet returns c's reads and writes made with raw system calls, when c
// has a file descriptor: see rawIO.
func Quiet(c io.ReadWriter) io.ReadWriter {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return rawIO{rc: rc}
}

// rawIO reads and writes a non-blocking descriptor (a connection's pipe)
// with raw system calls, waiting for it through the runtime's poller as
// os.File and net.Conn do (deadlines and Close included). A non-blocking
// read or write never blocks, so it need not tell the scheduler it enters
// a system call; telling it, as every os.File and net.Conn read and write
// does, wakes the runtime's monitor thread (sysmon) whenever the process
// was idle: in a plugin that sleeps between calls, one more context
// switch or two per call.
type rawIO struct {
	rc syscall.RawConn
	// linger makes a read that finds nothing yield to the process's other
	// goroutines and try again, while none of them wants the processor and
	// for lingerFor at most, before it waits in the poller: see
	// QuietLinger.
	linger bool
}

const (
	// lingerFor is how long a lingering read tries again: an answer of
	// tlspin-builtins comes within 35-55 µs on an idle machine.
	lingerFor = 60 * time.Microsecond
	// busyYield is how long a yield must have taken for a lingering read
	// to take the process for busy, and wait in the poller instead:
	// another goroutine ran, which a yield to nobody (a fraction of a
	// microsecond) does not.
	busyYield = 5 * time.Microsecond
)

// QuietLinger is Quiet for the host's reads of answers, which linger: a
// thread that waits in the poller, with nothing else to run, lets its
// vCPU halt, and waking a halted vCPU is what an uncached call costs most
// on some VMs (twice per call: the plugin's and the host's). Lingering
// keeps the host's awake for the answer, but only while the process has
// nothing else to run, so a busy host loses nothing to it
// (docs/performance.md, "Checked again after the reviews of the sixteenth
// landing").
func QuietLinger(c io.ReadWriter) io.ReadWriter {
	q := Quiet(c)
	if r, ok := q.(rawIO); ok {
		r.linger = true
		return r
	}
	return q
}

func (r rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var (
		n              uintptr
		errno          syscall.Errno
		start, yielded time.Time
	)
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			n, _, errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			if errno == syscall.EINTR {
				continue
			}
			if errno != syscall.EAGAIN || !r.linger {
				return errno != syscall.EAGAIN
			}
			now := time.Now()
			if start.IsZero() {
				start = now
			} else if now.Sub(start) > lingerFor || now.Sub(yielded) > busyYield {
				return false // wait in the poller
			}
			yielded = now
			runtime.Gosched()
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
