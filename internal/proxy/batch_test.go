package proxy

import (
	"bytes"
	"crypto/tls"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
)

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
// flush reach the socket in one write, intact and in order, also with a
// close_notify from another goroutine racing the flush; without hold,
// each record is its own write (at least four: crypto/tls starts a
// connection with small records).
func TestBatchConn(t *testing.T) {
	key, leaf, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "batch"})
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}
	for _, tc := range []struct {
		name                 string
		hold                 bool
		minWrites, maxWrites int64
	}{
		// The close_notify is held with the records or follows them.
		{"held", true, 1, 2},
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
			var wg sync.WaitGroup
			wg.Go(func() { closeWrite(c) }) // close_notify, after the records or held behind them
			if err := batch.flush(); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if n := counted.writes.Load() - before; n < tc.minWrites || n > tc.maxWrites {
				t.Errorf("%d writes reached the socket for %d bytes and a close_notify, want %d to %d", n, len(payload), tc.minWrites, tc.maxWrites)
			}
			if b := <-got; !bytes.Equal(b, payload) {
				t.Errorf("peer read %d bytes, want the %d written, in order", len(b), len(payload))
			}
		})
	}
}
