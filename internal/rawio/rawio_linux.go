package rawio

import (
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Quiet returns c's reads and writes made with raw system calls, when c
// has a file descriptor: see rawIO.
func Quiet(c io.ReadWriter) io.ReadWriter {
	if r := quiet(c); r != nil {
		return r
	}
	return c
}

func quiet(c io.ReadWriter) *rawIO {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &rawIO{rc: rc, rd: newReadOp(false), wr: newWriteOp()}
}

// rawIO reads and writes a non-blocking descriptor (a connection's pipe)
// with raw system calls, waiting for it through the runtime's poller as
// os.File and net.Conn do (deadlines and Close included). A non-blocking
// read or write never blocks, so it need not tell the scheduler it enters
// a system call; telling it, as every os.File and net.Conn read and write
// does, wakes the runtime's monitor thread (sysmon) whenever the process
// was idle: in a plugin that sleeps between calls, one more context
// switch or two per call.
//
// A read, and a write, keep their state in an op made once and reused
// (rd, wr): a function literal given to the RawConn, and the variables it
// sets, cost nine allocations per call on each side (about a microsecond
// of the plugin's, with the collection they bring). A read or write that
// finds its op taken by another goroutine's makes one of its own.
type rawIO struct {
	rc syscall.RawConn
	rd *readOp
	wr *writeOp
}

// readOp is the state of one read; do is what the RawConn calls.
type readOp struct {
	busy atomic.Bool
	do   func(fd uintptr) bool // try, bound once
	p    []byte
	n    uintptr
	// errno is the read's error; EAGAIN while it has found nothing.
	errno syscall.Errno
	// linger makes a read that finds nothing yield to the process's other
	// goroutines and try again, while none of them wants the processor and
	// for lingerFor at most, before it waits in the poller: see
	// QuietLinger.
	linger         bool
	start, yielded time.Time
}

func newReadOp(linger bool) *readOp {
	op := &readOp{linger: linger}
	op.do = op.try
	return op
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
	r := quiet(c)
	if r == nil {
		return c
	}
	r.rd.linger = true
	return r
}

func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	op := r.rd
	if !op.busy.CompareAndSwap(false, true) {
		op = newReadOp(op.linger)
	}
	op.p, op.n, op.errno, op.start, op.yielded = p, 0, 0, time.Time{}, time.Time{}
	err := r.rc.Read(op.do)
	n, errno := op.n, op.errno
	op.p = nil
	op.busy.Store(false)
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

// try reads once, or, lingering, until the time to wait in the poller;
// false: wait for the descriptor to be readable, then try again.
func (op *readOp) try(fd uintptr) bool {
	p := op.p
	for {
		op.n, _, op.errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if op.errno == syscall.EINTR {
			continue
		}
		if op.errno != syscall.EAGAIN || !op.linger {
			return op.errno != syscall.EAGAIN
		}
		now := time.Now()
		if op.start.IsZero() {
			op.start = now
		} else if now.Sub(op.start) > lingerFor || now.Sub(op.yielded) > busyYield {
			return false // wait in the poller
		}
		op.yielded = now
		runtime.Gosched()
	}
}

// writeOp is the state of one write; do is what the RawConn calls.
type writeOp struct {
	busy  atomic.Bool
	do    func(fd uintptr) bool // try, bound once
	p     []byte                // what is left to write
	n     uintptr
	errno syscall.Errno
}

func newWriteOp() *writeOp {
	op := &writeOp{}
	op.do = op.try
	return op
}

func (r *rawIO) Write(p []byte) (int, error) {
	raceReleaseMerge()
	op := r.wr
	if !op.busy.CompareAndSwap(false, true) {
		op = newWriteOp()
	}
	defer func() {
		op.p = nil
		op.busy.Store(false)
	}()
	done := 0
	for done < len(p) {
		op.p, op.n, op.errno = p[done:], 0, 0
		if err := r.rc.Write(op.do); err != nil {
			return done, err
		}
		if op.errno != 0 {
			return done, os.NewSyscallError("write", op.errno)
		}
		done += int(op.n)
	}
	return done, nil
}

// try writes once; false: wait for the descriptor to be writable, then
// try again.
func (op *writeOp) try(fd uintptr) bool {
	for {
		op.n, _, op.errno = syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&op.p[0])), uintptr(len(op.p)))
		if op.errno != syscall.EINTR {
			return op.errno != syscall.EAGAIN
		}
	}
}
