package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tlspin/tlspin/internal/abort"
	"github.com/tlspin/tlspin/internal/server"
)

// recordSize is one TLS record's worth of plaintext: tls.Conn never
// returns more from one Read, so it is the buffer of the TLS side.
const recordSize = 16 << 10

// plainSize is the buffer of the plaintext side: one read of a busy socket
// fills several records at once.
const plainSize = 4 * recordSize

func pool(size int) *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, size); return &b }}
}

var (
	recordBuffers = pool(recordSize)
	plainBuffers  = pool(plainSize)
)

// piped is what pipe moved.
type piped struct {
	toTarget, fromTarget int64
	err                  error
}

// pipe copies client to target and back until both directions are done.
// EOF on one side half-closes the other; an error (a reset) resets the
// other side and ends both directions. ctx ending resets both. With idle
// > 0, the connection is closed when no byte moved either way for that
// long: none read, and none taken by a socket the proxy was writing to (a
// peer that reads slowly is not idle).
func pipe(ctx context.Context, client, target net.Conn, idle time.Duration, m *Metrics) piped {
	// The sockets themselves, not the TLS sessions: closing one sends a
	// close_notify, which waits for the lock of any record being written,
	// and crypto/tls writes a key update's answer from inside Read, with
	// no Write under way to make Close skip it; to a peer that stops
	// reading, that write, and a revocation, would wait for ever.
	//
	// A cut (shutdown, eviction, revocation) resets both sides (abort):
	// a peer reading to the end must see an error, not a FIN that it,
	// or crypto/tls at a record boundary, would take for a whole stream.
	// (A unix socket has no reset: that side sees a plain close.)
	stop := context.AfterFunc(ctx, func() { abort.Conn(client); abort.Conn(target) })
	defer stop()
	defer client.Close()
	defer target.Close()
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	// What the TLS layer writes is bounded by the idle timeout as the
	// proxy's own writes are (writeAll), a key update's answer included.
	for _, c := range []net.Conn{client, target} {
		if b := batchOf(c); b != nil {
			b.idle, b.last = idle, &last
		}
	}
	var res piped
	var errOnce sync.Once
	fail := func(err error) { errOnce.Do(func() { res.err = err }) }
	// toTarget and fromTarget are the directions that ended cleanly (EOF,
	// passed on as a half-close).
	var toTarget, fromTarget atomic.Bool
	// idleCut ends a connection idle both ways: a side whose incoming
	// stream had ended cleanly keeps it, closed without a reset (which
	// would throw away what its kernel has yet to deliver, and the end
	// with it); a side whose stream is cut short is reset.
	idleCut := func() {
		for _, s := range []struct {
			c     net.Conn
			ended *atomic.Bool
		}{{client, &fromTarget}, {target, &toTarget}} {
			if s.ended.Load() {
				closeSocket(s.c)
			} else {
				abort.Conn(s.c)
			}
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		res.toTarget = copyHalf(target, client, idle, &last, fail, idleCut, &toTarget, m.bytesCounter("to_target"))
	})
	wg.Go(func() {
		res.fromTarget = copyHalf(client, target, idle, &last, fail, idleCut, &fromTarget, m.bytesCounter("from_target"))
	})
	wg.Wait()
	return res
}

// errIdle ends a connection idle both ways for the idle timeout.
var errIdle = errors.New("proxy: idle both ways for the idle timeout")

// copyHalf copies src to dst with a pooled buffer, then half-closes dst
// on EOF and sets ended, or resets both on an error; idleCut ends both
// once the connection is idle.
//
// A plaintext socket is waited on without a buffer (waitReadable), and the
// buffer goes back to the pool whenever a read drained the socket: an idle
// connection then holds a buffer only on its TLS side, whose own buffers
// may already hold the next record (docs/performance.md, memory per idle
// connection).
//
// The idle deadline is moved only once it has aged by a sixteenth of the
// idle timeout, not on every read: setting it costs a timer update per
// read. When it passes early, it is moved to exactly the moment both
// directions will have been idle for the timeout. Writes note their
// progress themselves (writeAll).
func copyHalf(dst, src net.Conn, idle time.Duration, last *atomic.Int64, fail func(error), idleCut func(), ended *atomic.Bool, count func(int)) int64 {
	raw := plainSocket(src)
	buffers := recordBuffers
	if raw != nil {
		buffers = plainBuffers
	}
	var bp *[]byte
	defer func() {
		if bp != nil {
			buffers.Put(bp)
		}
	}()
	var armed int64 // the read deadline set on src, unix nanoseconds
	arm := func(at int64) {
		armed = at
		src.SetReadDeadline(time.Unix(0, at))
	}
	// isIdle says whether no byte moved either way for the idle timeout:
	// an error then (a write given up, a read failing after one inside
	// crypto/tls) is the idle timeout's.
	isIdle := func() bool {
		return idle > 0 && time.Now().UnixNano()-last.Load() >= int64(idle)
	}
	if idle > 0 {
		arm(last.Load() + int64(idle))
	}
	batch := batchOf(dst)
	// A TLS session cannot be written again once a deadline cut a write
	// short: its writes are bounded underneath (batchConn).
	_, tlsDst := dst.(*tls.Conn)
	var total, unyielded int64
	for {
		if unyielded >= yieldBytes {
			unyielded = 0
			// A goroutine that never blocks (bulk: both sockets always
			// ready) would run past the scheduler's 10 ms slice, and the
			// runtime would preempt it with a signal and wake its monitor
			// thread every 20 µs for a while after; yielding first is
			// cheaper (docs/performance.md, issue 11).
			runtime.Gosched()
		}
		var (
			n   int
			err error
		)
		if bp == nil && raw != nil {
			err = waitReadable(raw)
		}
		if err == nil {
			if bp == nil {
				bp = buffers.Get().(*[]byte)
			}
			buf := *bp
			n, err = src.Read(buf)
			if n > 0 {
				now := time.Now().UnixNano()
				last.Store(now)
				if idle > 0 && now+int64(idle)-armed > int64(idle/16) {
					arm(now + int64(idle))
				}
				unyielded += int64(n)
				if batch != nil && n > recordSize {
					batch.hold()
				}
				var werr error
				if !tlsDst {
					_, werr = writeAll(dst, buf[:n], idle, last)
				} else {
					_, werr = dst.Write(buf[:n])
				}
				if batch != nil {
					if ferr := batch.flush(); werr == nil {
						werr = ferr
					}
				}
				if werr != nil {
					if isIdle() {
						fail(errIdle)
						idleCut()
					} else {
						fail(werr)
						abort.Conn(src)
					}
					return total
				}
				total += int64(n)
				count(n)
			}
			if raw != nil && n < len(buf) {
				buffers.Put(bp)
				bp = nil
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			closeWrite(dst)
			ended.Store(true)
			return total
		case errors.Is(err, os.ErrDeadlineExceeded) && idle > 0:
			if at := last.Load() + int64(idle); at > time.Now().UnixNano() {
				arm(at) // this direction or the other moved bytes since
				continue
			}
			fail(errIdle)
			idleCut()
			return total
		default:
			if b := batchOf(src); b != nil && b.failed() != nil {
				// crypto/tls fails a read after a key update it could not
				// answer as a bad record: say what happened.
				err = b.failed()
			}
			if isIdle() {
				fail(errIdle)
				idleCut()
			} else {
				fail(err)
				abort.Conn(dst)
			}
			return total
		}
	}
}

// writeAll writes p to c. With idle > 0, it writes within deadlines a
// sixteenth of idle ahead, notes in last every time c took bytes, and
// gives up (with the deadline's error) only once no byte moved either way
// for idle: a peer that reads slowly keeps the connection alive, one that
// reads nothing does not hold it for ever. A socket, unlike a TLS
// session, can be written again after a deadline passed.
func writeAll(c net.Conn, p []byte, idle time.Duration, last *atomic.Int64) (int, error) {
	if idle <= 0 {
		return c.Write(p)
	}
	var total int
	for {
		c.SetWriteDeadline(time.Now().Add(idle / 16))
		n, err := c.Write(p[total:])
		total += n
		if n > 0 {
			last.Store(time.Now().UnixNano())
		}
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || time.Now().UnixNano()-last.Load() >= int64(idle) {
			return total, err
		}
	}
}

// yieldBytes is how many bytes copyHalf copies before it yields: a
// megabyte takes well under 10 ms at the speeds where it matters.
const yieldBytes = 1 << 20

// plainSocket returns the socket under c when c is plaintext, read
// through nothing that buffers (a TCP or unix socket, possibly in a
// server.Conn, or a unix socket of ListenUnix); nil for TLS or anything
// else.
func plainSocket(c net.Conn) syscall.Conn {
	if sc, ok := c.(*server.Conn); ok {
		c = sc.NetConn()
	}
	if uc, ok := c.(*unixPeerConn); ok {
		c = uc.NetConn()
	}
	switch v := c.(type) {
	case *net.TCPConn:
		return v
	case *net.UnixConn:
		return v
	}
	return nil
}

// under returns the connection c wraps (a TLS session's transport, the
// socket of a server.Conn or of a batchConn), or nil.
func under(c net.Conn) net.Conn {
	if u, ok := c.(interface{ NetConn() net.Conn }); ok {
		return u.NetConn()
	}
	return nil
}

// closeSocket closes the connection at the bottom of c (the socket under
// a TLS session), sending nothing of the TLS layer's.
func closeSocket(c net.Conn) {
	for u := under(c); u != nil; u = under(u) {
		c = u
	}
	c.Close()
}

// closeWrite half-closes c: close_notify on TLS, then a FIN (or the unix
// socket's shutdown) underneath.
func closeWrite(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		tc.CloseWrite()
	}
	for ; c != nil; c = under(c) {
		switch v := c.(type) {
		case *net.TCPConn:
			v.CloseWrite()
			return
		case *net.UnixConn:
			v.CloseWrite()
			return
		}
	}
}
