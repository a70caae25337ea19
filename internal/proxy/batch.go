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
type batchConn struct {
	net.Conn
	mu   sync.Mutex // serializes writes, so that held records keep their place
	held *[]byte    // nil: writes go straight through
}

var batchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, plainSize+plainSize/recordSize*64); return &b }}

// NetConn returns the connection underneath.
func (b *batchConn) NetConn() net.Conn { return b.Conn }

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held != nil {
		*b.held = append(*b.held, p...)
		return len(p), nil
	}
	return b.Conn.Write(p)
}

// hold starts keeping writes.
func (b *batchConn) hold() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held == nil {
		b.held = batchBuffers.Get().(*[]byte)
	}
}

// flush sends what was kept, if anything, and lets writes through again.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	held := b.held
	if held == nil {
		return nil
	}
	b.held = nil
	_, err := b.Conn.Write(*held)
	*held = (*held)[:0]
	batchBuffers.Put(held)
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
