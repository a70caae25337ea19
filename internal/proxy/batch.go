package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlspin/tlspin/internal/abort"
)

// batchConn is the transport under a tls.Conn that the proxy writes to.
// Between hold and flush it keeps what the TLS layer writes (the records
// of one large Write) and sends it with one write: a 64 KB read from the
// plaintext side becomes four 16 KB records, one syscall and one segment
// on loopback instead of four.
//
// A write that arrives while records are held or being flushed (a
// close_notify or key update from the other direction) is queued behind
// them, so records keep their order, and tls.Conn.Close never waits for
// a flush blocked on a peer that stopped reading: its close_notify is
// queued and the socket closed, which ends the flush.
//
// What is queued during a flush is bounded (maxQueued): a TLS 1.3 peer
// that stops reading and keeps asking for key updates, each answered by a
// record of crypto/tls's, would otherwise grow the queue without end.
// A write past the bound fails and resets the socket (abort.Conn), which
// ends the flush with that error: crypto/tls keeps reading after a failed
// key update, so the connection would otherwise live on. A reset, as for
// every cut the proxy makes: a FIN would let the peer, once it reads
// again, take what it got for a whole stream.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	held     *[]byte // kept since hold or during a flush; nil: writes go straight through
	flushing bool
	err      error // errQueueFull, once the bound was passed
	// idle and last, set by pipe before it copies, bound each write to
	// the socket by the idle timeout (writeAll); zero: writes unbounded.
	idle time.Duration
	last *atomic.Int64
}

// maxQueued bounds the bytes queued behind a flush: a close_notify or a
// key update is some 30 bytes, so this is hundreds of them.
const maxQueued = 16 << 10

// errQueueFull is a write refused because maxQueued bytes wait behind a
// flush to a peer that does not read.
var errQueueFull = errors.New("proxy: the peer does not read, and more than 16 KiB of TLS records (key updates) wait for it")

var batchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, plainSize+plainSize/recordSize*64); return &b }}

// NetConn returns the connection underneath.
func (b *batchConn) NetConn() net.Conn { return b.Conn }

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.held == nil && !b.flushing {
		b.mu.Unlock()
		return b.write(p)
	}
	defer b.mu.Unlock()
	if b.held == nil {
		b.held = batchBuffers.Get().(*[]byte)
	}
	if b.flushing && len(*b.held)+len(p) > maxQueued {
		if b.err == nil {
			b.err = errQueueFull
			abort.Conn(b.Conn)
		}
		return 0, b.err
	}
	*b.held = append(*b.held, p...)
	return len(p), nil
}

// write writes p to the socket, within the idle timeout once pipe set it.
func (b *batchConn) write(p []byte) (int, error) {
	if b.last == nil {
		return b.Conn.Write(p)
	}
	return writeAll(b.Conn, p, b.idle, b.last)
}

// hold starts keeping writes. The caller serializes hold and flush.
func (b *batchConn) hold() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held == nil {
		b.held = batchBuffers.Get().(*[]byte)
	}
}

// flush sends what was kept, and what was queued meanwhile, then lets
// writes through again. After an error, what is left is dropped.
func (b *batchConn) flush() error {
	var err error
	b.mu.Lock()
	for b.held != nil {
		held := b.held
		b.held, b.flushing = nil, true
		b.mu.Unlock()
		if err == nil {
			_, err = b.write(*held)
		}
		*held = (*held)[:0]
		batchBuffers.Put(held)
		b.mu.Lock()
	}
	b.flushing = false
	if b.err != nil {
		err = b.err
	}
	b.mu.Unlock()
	return err
}

// failed returns errQueueFull once a write past the bound failed, else nil.
func (b *batchConn) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// batchOf returns the batchConn under a TLS connection, if any.
func batchOf(c net.Conn) *batchConn {
	if tc, ok := c.(*tls.Conn); ok {
		b, _ := tc.NetConn().(*batchConn)
		return b
	}
	return nil
}
