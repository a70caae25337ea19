package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/wait"
)

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, leaf, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "batch"})
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}
}

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestBatchConn: the records of one large tls.Conn.Write between hold and
// flush reach the socket in one write, intact and in order; without hold,
// each record is its own write (at least four: crypto/tls starts a
// connection with small records). The close_notify that follows, as
// copyHalf sends it on EOF, is one more write.
func TestBatchConn(t *testing.T) {
	cert := selfSigned(t)
	for _, tc := range []struct {
		name                 string
		hold                 bool
		minWrites, maxWrites int64
	}{
		{"held", true, 2, 2},
		{"not held", false, plainSize/recordSize + 1, 1 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan []byte, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- nil
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				b, _ := io.ReadAll(tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}}))
				got <- b
			}()
			raw, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			counted := &countingConn{Conn: raw}
			batch := &batchConn{Conn: counted}
			c := tls.Client(batch, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if err := c.Handshake(); err != nil {
				t.Fatal(err)
			}
			if batchOf(c) != batch {
				t.Fatal("batchOf does not find the batchConn under the TLS connection")
			}
			payload := make([]byte, plainSize)
			rand.NewChaCha8([32]byte{7}).Read(payload)
			before := counted.writes.Load()
			if tc.hold {
				batch.hold()
			}
			if _, err := c.Write(payload); err != nil {
				t.Fatal(err)
			}
			if err := batch.flush(); err != nil {
				t.Fatal(err)
			}
			closeWrite(c)
			if n := counted.writes.Load() - before; n < tc.minWrites || n > tc.maxWrites {
				t.Errorf("%d writes reached the socket for %d bytes and a close_notify, want %d to %d", n, len(payload), tc.minWrites, tc.maxWrites)
			}
			if b := <-got; !bytes.Equal(b, payload) {
				t.Errorf("peer read %d bytes, want the %d written, in order", len(b), len(payload))
			}
		})
	}
}

// gatedConn records writes; the first one waits for gate, which Close
// closes.
type gatedConn struct {
	net.Conn
	gate   chan struct{}
	closed sync.Once
	mu     sync.Mutex
	writes []string
}

func (c *gatedConn) Close() error {
	c.closed.Do(func() { close(c.gate) })
	return nil
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	first := len(c.writes) == 0
	c.writes = append(c.writes, string(p))
	c.mu.Unlock()
	if first {
		<-c.gate
	}
	return len(p), nil
}

// TestBatchConnQueuesDuringFlush: a write that arrives while a flush is
// under way (a close_notify or key update from the other direction) is
// queued behind the flushed bytes and sent by the same flush; once the
// flush is done, writes go straight through again.
func TestBatchConnQueuesDuringFlush(t *testing.T) {
	conn := &gatedConn{gate: make(chan struct{})}
	b := &batchConn{Conn: conn}
	b.hold()
	b.Write([]byte("A"))
	b.Write([]byte("B"))
	flushed := make(chan error, 1)
	go func() { flushed <- b.flush() }()
	wait.Until(10*time.Second, func() bool { conn.mu.Lock(); defer conn.mu.Unlock(); return len(conn.writes) == 1 })
	if n, err := b.Write([]byte("C")); n != 1 || err != nil {
		t.Fatalf("write during a flush: %d, %v", n, err)
	}
	conn.Close()
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("D"))
	if got := strings.Join(conn.writes, "|"); got != "AB|C|D" {
		t.Errorf("writes %q, want AB|C|D: held bytes in one write, the one queued during the flush after them, then straight through", got)
	}
}

// TestBatchConnBoundsQueueDuringFlush is the attack of a TLS 1.3 peer
// that stops reading and keeps asking for key updates: each answer is
// queued behind the blocked flush, up to maxQueued bytes; past that the
// write fails and closes the socket, which ends the flush with that
// error, instead of the proxy's memory growing without end.
func TestBatchConnBoundsQueueDuringFlush(t *testing.T) {
	conn := &gatedConn{gate: make(chan struct{})}
	defer conn.Close()
	b := &batchConn{Conn: conn}
	b.hold()
	b.Write(make([]byte, plainSize)) // a full batch: not bounded, the flush takes it
	flushed := make(chan error, 1)
	go func() { flushed <- b.flush() }()
	wait.Until(10*time.Second, func() bool { conn.mu.Lock(); defer conn.mu.Unlock(); return len(conn.writes) == 1 })
	keyUpdate := make([]byte, 27)
	queued := 0
	for range 10 * maxQueued / len(keyUpdate) {
		n, err := b.Write(keyUpdate)
		if err != nil {
			if !errors.Is(err, errQueueFull) || n != 0 {
				t.Fatalf("write past the bound: %d, %v; want 0, errQueueFull", n, err)
			}
			break
		}
		queued += n
	}
	if queued > maxQueued || queued < maxQueued-len(keyUpdate) {
		t.Errorf("queued %d bytes behind the flush before a write failed, want up to %d", queued, maxQueued)
	}
	flushEndedByTheBound(t, flushed)
}

// TestBatchConnQueueFullResets: the key-update flood of a TLS 1.3 peer
// that stops reading, past the bound, cuts the connection; as every cut
// the proxy makes (docs/threat-model.md, truncation by the proxy), it
// must be a reset, not a FIN that a peer reading to the end once it reads
// again, or crypto/tls at a record boundary, takes for a whole stream.
// The socket was closed plainly: the peer, which had sent nothing left
// unread, got what the kernel held of the flush, then a clean end.
func TestBatchConnQueueFullResets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		c.(*net.TCPConn).SetReadBuffer(4 << 10)
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.(*net.TCPConn).SetWriteBuffer(4 << 10)
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	defer peer.Close()

	b := &batchConn{Conn: raw}
	b.hold()
	b.Write(make([]byte, 1<<20)) // far more than the socket buffers take while the peer does not read
	flushed := make(chan error, 1)
	go func() { flushed <- b.flush() }()
	wait.Until(10*time.Second, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.flushing })
	keyUpdate := make([]byte, 27)
	full := false
	for range 10 * maxQueued / len(keyUpdate) {
		if _, err := b.Write(keyUpdate); err != nil {
			if !errors.Is(err, errQueueFull) {
				t.Fatalf("write past the bound: %v, want errQueueFull", err)
			}
			full = true
			break
		}
	}
	if !full {
		t.Fatal("no write failed past the bound")
	}
	flushEndedByTheBound(t, flushed)
	// The peer reads again, to the end.
	peer.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, peer)
	var ne net.Error
	switch {
	case err == nil:
		t.Errorf("the peer read %d bytes, then a clean end: the cut passes for a whole stream; want a reset", n)
	case errors.As(err, &ne) && ne.Timeout():
		t.Errorf("the peer read %d bytes and no end within 20s", n)
	case !errors.Is(err, syscall.ECONNRESET):
		t.Errorf("the peer read %d bytes, then %v; want a reset", n, err)
	}
}

// TestBatchConnCloseDuringFlush: closing the TLS connection while a flush
// is blocked on a peer that stopped reading ends the flush with an error
// at once; Close does not wait for it (crypto/tls would otherwise wait up
// to 5 s to send its close_notify).
func TestBatchConnCloseDuringFlush(t *testing.T) {
	cert := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	release := make(chan struct{})
	defer close(release)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		s.Handshake()
		<-release // then stop reading
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	batch := &batchConn{Conn: raw}
	c := tls.Client(batch, &tls.Config{InsecureSkipVerify: true})
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	batch.hold()
	if _, err := c.Write(make([]byte, 32<<20)); err != nil { // far more than the socket buffers take while the peer does not read
		t.Fatal(err)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- batch.flush() }()
	wait.Until(10*time.Second, func() bool { batch.mu.Lock(); defer batch.mu.Unlock(); return batch.flushing })
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("Close waited for a flush blocked on a peer that does not read")
	}
	select {
	case err := <-flushed:
		if err == nil {
			t.Error("a flush cut by Close reported success")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("flush still blocked after Close")
	}
}

// flushEndedByTheBound waits for the flush under way to end with
// errQueueFull, as the write past the bound must end it.
func flushEndedByTheBound(t *testing.T, flushed <-chan error) {
	t.Helper()
	select {
	case err := <-flushed:
		if !errors.Is(err, errQueueFull) {
			t.Errorf("flush = %v, want errQueueFull", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the flush was not ended by the write past the bound")
	}
}
