package direct

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// A connection carries its calls on two pipes, not on the unix socket it
// was opened on: the host makes them, checks who is at the other end of
// the socket (the dial function's and Serve's admit's job), then passes
// the plugin its ends (the requests' read end, the answers' write end)
// over the socket with SCM_RIGHTS, and both close the socket.
//
// Why: a unix socket wakes its writer's poller whenever the reader
// consumes what was written, even with room to spare; the Go runtime
// polls every socket for writability, so each answer the host read woke
// the idle plugin once more for nothing (0.6 extra context switches per
// call, counted with strace), and each request the plugin read woke the
// host. A pipe wakes its writer only when it was full. Measured with 16
// clients handshaking: the plugin sleeps 0.84 times per call instead of
// 1.5 and uses 83 µs of CPU per call instead of 100; one Verify on an
// idle machine takes 42-48 µs instead of 53-61.

// pipeConn is one connection's two pipes, as this side sees them.
type pipeConn struct {
	r, w *os.File // the host reads answers and writes requests; the plugin the other way
}

func (p *pipeConn) SetDeadline(t time.Time) error {
	return errors.Join(p.r.SetDeadline(t), p.w.SetDeadline(t))
}

func (p *pipeConn) Close() error { return errors.Join(p.r.Close(), p.w.Close()) }

// offerPipes makes a connection's pipes and passes the plugin its ends
// over the socket c, which it closes.
func offerPipes(c net.Conn) (*pipeConn, error) {
	defer c.Close()
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("direct: %T is not a unix socket", c)
	}
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("direct: pipe: %w", err)
	}
	ansR, ansW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, fmt.Errorf("direct: pipe: %w", err)
	}
	// The plugin's ends are closed here once sent: the socket holds them.
	defer reqR.Close()
	defer ansW.Close()
	var fds []int
	for _, f := range []*os.File{reqR, ansW} {
		rc, err := f.SyscallConn()
		if err == nil {
			err = rc.Control(func(fd uintptr) { fds = append(fds, int(fd)) })
		}
		if err != nil {
			reqW.Close()
			ansR.Close()
			return nil, fmt.Errorf("direct: pipe: %w", err)
		}
	}
	if _, _, err := uc.WriteMsgUnix([]byte{0}, syscall.UnixRights(fds...), nil); err != nil {
		reqW.Close()
		ansR.Close()
		return nil, fmt.Errorf("%w: passing the pipes: %w", ErrTransport, err)
	}
	return &pipeConn{r: ansR, w: reqW}, nil
}

// takePipes receives, on the socket c, the pipes a host offers, which it
// closes: exactly two descriptors, a pipe's read end then a pipe's write
// end. Anything else closes every descriptor received.
func takePipes(c net.Conn) (*pipeConn, error) {
	defer c.Close()
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("direct: %T is not a unix socket", c)
	}
	var (
		b   [1]byte
		oob = make([]byte, syscall.CmsgSpace(3*4)) // room for one too many
	)
	_, oobn, flags, _, err := uc.ReadMsgUnix(b[:], oob)
	if err != nil {
		return nil, fmt.Errorf("direct: receiving the pipes: %w", err)
	}
	var fds []int
	if msgs, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if got, err := syscall.ParseUnixRights(&m); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	files, err := pipeEnds(fds, flags)
	if err != nil {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return nil, err
	}
	return &pipeConn{r: files[0], w: files[1]}, nil
}

// pipeEnds checks the descriptors a host passed and makes them files.
func pipeEnds(fds []int, flags int) ([2]*os.File, error) {
	var out [2]*os.File
	if flags&syscall.MSG_CTRUNC != 0 || len(fds) != 2 {
		return out, fmt.Errorf("direct: %d descriptors passed, want 2 pipe ends", len(fds))
	}
	for i, want := range []int{syscall.O_RDONLY, syscall.O_WRONLY} {
		var st syscall.Stat_t
		if err := syscall.Fstat(fds[i], &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
			return out, fmt.Errorf("direct: descriptor %d passed is not a pipe", i)
		}
		fl, err := fcntlGetfl(fds[i])
		if err != nil || fl&syscall.O_ACCMODE != want {
			return out, fmt.Errorf("direct: descriptor %d passed is not a pipe's %s end", i, map[int]string{syscall.O_RDONLY: "read", syscall.O_WRONLY: "write"}[want])
		}
		if err := syscall.SetNonblock(fds[i], true); err != nil {
			return out, fmt.Errorf("direct: %w", err)
		}
	}
	for i := range out {
		syscall.CloseOnExec(fds[i])
		out[i] = os.NewFile(uintptr(fds[i]), "pipe")
	}
	return out, nil
}

func fcntlGetfl(fd int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
