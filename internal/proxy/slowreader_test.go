package proxy_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/proxy"
)

// smallReceiveDialer dials with a 4 KiB receive buffer, so that a slow
// reader holds the proxy's writes back rather than the kernel's buffers
// taking them.
var smallReceiveDialer = &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
}}

// TestSlowReaderIsNotIdle: a connection is idle when no byte moves
// either way, not when the proxy is blocked writing to a peer that reads
// slowly but reads. One write of a 64 KiB read that took longer than
// --idle-timeout to drain used to end the connection as idle, mid-stream.
// And an idle close must not discard a stream that had already ended
// cleanly: its tail, still in the proxy's send buffer when the peer had
// not read it yet, was thrown away by the reset meant for the direction
// still open.
func TestSlowReaderIsNotIdle(t *testing.T) {
	const idle = 300 * time.Millisecond
	payload := make([]byte, 512<<10)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	t.Run("slow reader", func(t *testing.T) {
		back := startBackend(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
			c.SetDeadline(time.Now().Add(60 * time.Second))
			c.Write(payload)
		})
		ev := &events{}
		addr, _ := runOn(t, proxy.Config{Mode: proxy.ServerMode, TLS: pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{}),
			Target: back.addr, IdleTimeout: idle, OnEvent: ev.on}, smallSendBuffers(t))
		c, err := tls.DialWithDialer(smallReceiveDialer, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		// 4 KiB every 40 ms, about 100 KB/s: a 64 KiB write of the proxy's
		// takes some 650 ms to drain, twice the idle timeout, while bytes
		// move all along.
		var got bytes.Buffer
		buf := make([]byte, 4<<10)
		var rerr error
		for range 2 * len(payload) / len(buf) { // bounded: twice what it takes
			var n int
			n, rerr = io.ReadFull(c, buf)
			got.Write(buf[:n])
			if rerr != nil {
				break
			}
			time.Sleep(40 * time.Millisecond)
		}
		if rerr != io.EOF && rerr != io.ErrUnexpectedEOF || !bytes.Equal(got.Bytes(), payload) {
			e, _ := ev.find(func(e proxy.Event) bool { return e.Kind == proxy.EventClosed })
			t.Fatalf("the slow reader got %d of %d bytes, then %v (close event %+v); want them all, then a clean end", got.Len(), len(payload), rerr, e)
		}
	})
	t.Run("a stream ended cleanly outlives the idle close", func(t *testing.T) {
		// The target sends its reply, half-closes and waits for more of
		// the client, which sends nothing and does not read for a while:
		// idle both ways. The reply ended cleanly; only the client's
		// direction is cut.
		const reply = 6 << 10 // more than the client's receive buffer takes, less than it and the proxy's send buffer
		targetRead := make(chan error, 1)
		back := startBackend(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
			c.SetDeadline(time.Now().Add(60 * time.Second))
			c.Write(payload[:reply])
			c.(*net.TCPConn).CloseWrite()
			_, err := io.Copy(io.Discard, c)
			targetRead <- err
		})
		ev := &events{}
		addr, _ := runOn(t, proxy.Config{Mode: proxy.ServerMode, TLS: pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{}),
			Target: back.addr, IdleTimeout: idle, OnEvent: ev.on}, smallSendBuffers(t))
		c, err := tls.DialWithDialer(smallReceiveDialer, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, ok := waitEvent(ev, func(e proxy.Event) bool { return e.Kind == proxy.EventClosed }); !ok {
			t.Fatal("not closed as idle")
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, payload[:reply]) {
			t.Errorf("after the idle close, the client read %d of the %d bytes of a reply that had ended cleanly, then %v; want them all and a clean end", len(got), reply, err)
		}
		select {
		case err := <-targetRead:
			if err == nil {
				t.Error("the target, whose client's direction was cut, saw a clean end")
			}
		case <-time.After(20 * time.Second):
			t.Error("the target's read did not end")
		}
	})
}
