package proxy

import (
	"crypto/tls"
	"net"
	"sync"
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
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	held     *[]byte // kept since hold or during a flush; nil: writes go straight through
	flushing bool
}

var batchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, plainSize+plainSize/recordSize*64); return &b }}

// NetConn returns the connection underneath.
func (b *batchConn) NetConn() net.Conn { return b.Conn }

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.held == nil && !b.flushing {
		b.mu.Unlock()
		return b.Conn.Write(p)
	}
	defer b.mu.Unlock()
	if b.held == nil {
		b.held = batchBuffers.Get().(*[]byte)
	}
	*b.held = append(*b.held, p...)
	return len(p), nil
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
			_, err = b.Conn.Write(*held)
		}
		*held = (*held)[:0]
		batchBuffers.Put(held)
		b.mu.Lock()
	}
	b.flushing = false
	b.mu.Unlock()
	return err
}

// batchOf returns the batchConn under a TLS connection, if any.
func batchOf(c net.Conn) *batchConn {
	if tc, ok := c.(*tls.Conn); ok {
		b, _ := tc.NetConn().(*batchConn)
		return b
	}
	return nil
}
