package tlspin_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/e2e"
)

// stallConn sends all of a client's flight but its last held bytes, and
// says so on sent; it holds the rest for good, as if the path were slow.
type stallConn struct {
	net.Conn
	held int
	sent chan<- struct{}
}

func (c *stallConn) Write(b []byte) (int, error) {
	if len(b) <= c.held {
		return c.Conn.Write(b)
	}
	n, err := c.Conn.Write(b[:len(b)-c.held])
	c.sent <- struct{}{}
	if err != nil {
		return n, err
	}
	return len(b), nil
}

// TestListenBoundsHandshakeBytes: a client with no key can send a
// certificate message of up to the 256 KiB crypto/tls takes and stop
// just short of its end; the server holds what it read until the
// handshake times out. WithMaxHandshakes bounds only how many such
// handshakes there are: 1,024 of them from one address made a Listen
// server grow from 16 MB to 430 MB, for as long as they came back. What
// the handshakes in progress have read is bounded too: past the bound,
// the oldest handshake of the address holding the most bytes is closed,
// and a client that does its handshake still gets through.
func TestListenBoundsHandshakeBytes(t *testing.T) {
	good := newIdentity("good")
	v := start(t, []string{"spkipin:pin=" + good.spki}, tlspin.WithHandshakeTimeout(10*time.Minute))
	ln, err := v.Listen("tcp", "127.0.0.1:0", newIdentity("server").cert)
	if err != nil {
		t.Fatal(err)
	}
	addr := e2e.Serve(t, ln, func(c net.Conn) { io.WriteString(c, "hello") })

	// Each client's chain: its own certificate, then 240 KB that need
	// not parse, since the server never gets to the end of it.
	const filler, held = 60_000, 8_000
	attacker := newIdentity("attacker").cert
	attacker.Certificate = append(attacker.Certificate, make([]byte, filler), make([]byte, filler), make([]byte, filler), make([]byte, filler))
	sends := 4*filler - held // at least what each client's handshake makes the server read
	clients := 2*tlspin.MaxHandshakeBytes/sends + 2
	kept := tlspin.MaxHandshakeBytes/sends + 1

	var raws []net.Conn
	for range clients {
		raw, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		raws = append(raws, raw)
		sent := make(chan struct{}, 1)
		c := tls.Client(&stallConn{Conn: raw, held: held, sent: sent}, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{attacker}})
		go c.Handshake()
		<-sent
	}
	// The oldest are closed to make room for the newer ones' bytes.
	for i, raw := range raws[:clients-kept] {
		raw.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := raw.Read(make([]byte, 1))
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("handshake %d of %d, which sent %d bytes and stopped, still open with %d newer ones; want at most %d bytes held by handshakes (%d of them)",
				i+1, clients, sends, clients-1-i, tlspin.MaxHandshakeBytes, kept)
		}
	}
	// With the newest held, a client from another address that does its
	// handshake gets in.
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{good.cert}})
	if err != nil {
		t.Fatalf("a client that does its handshake: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(c); string(got) != "hello" {
		t.Fatalf("a client that does its handshake read %q, %v; want hello", got, err)
	}
}

// TestListenConnReachesTheSocket: a connection Listen returns counts what
// its handshake reads through a wrapper, so its NetConn is not the TCP
// connection; a program still reaches the socket through it, as a
// syscall.Conn, or through the wrapper's own NetConn.
func TestListenConnReachesTheSocket(t *testing.T) {
	good := newIdentity("good")
	v := start(t, []string{"spkipin:pin=" + good.spki})
	ln, err := v.Listen("tcp", "127.0.0.1:0", newIdentity("server").cert)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{good.cert}})
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nc := c.(*tls.Conn).NetConn()
	sc, ok := nc.(syscall.Conn)
	if !ok {
		t.Fatalf("NetConn %T is no syscall.Conn", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var soType int
	var serr error
	if err := rc.Control(func(fd uintptr) { soType, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TYPE) }); err != nil || serr != nil || soType != syscall.SOCK_STREAM {
		t.Fatalf("the socket through SyscallConn: type %d, %v, %v", soType, err, serr)
	}
	if _, ok := nc.(interface{ NetConn() net.Conn }).NetConn().(*net.TCPConn); !ok {
		t.Fatalf("NetConn's NetConn is no *net.TCPConn")
	}
}
