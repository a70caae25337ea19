package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/server"
	"github.com/tlspin/tlspin/internal/wait"
)

// dialFrom dials addr from the loopback source address ip (on Linux every
// 127.0.0.0/8 address is local), so that one test can be many clients.
func dialFrom(t testing.TB, ip, addr string) net.Conn {
	t.Helper()
	c, err := tryDialFrom(t, ip, addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tryDialFrom is dialFrom returning the dial's error, for a connection the
// server may reset before connect returns; it skips the test where ip
// cannot be bound.
func tryDialFrom(t testing.TB, ip, addr string) (net.Conn, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Skipf("cannot dial from %s (needs Linux loopback): %v", ip, err)
	}
	return c, err
}

// memInUse is the heap and stack memory in use after a collection.
func memInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// TestHostileConnectionsDoNotLockOut holds 500 hostile connections
// against the default settings, from 21 source addresses: idle ones that
// send nothing, half-open handshakes, handshakes trickled a byte at a
// time, and completed handshakes left idle; 40 of them come from one
// address, first, beyond the per-IP cap. A good client must still be served
// within a second, and the server must hold under 64 KB per connection.
func TestHostileConnectionsDoNotLockOut(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 500 connections")
	}
	cfg := pintls.ServerConfig(newCert(t, "server"), nil, pintls.Options{})
	ts := start(t, server.Config{TLS: cfg})
	hello := clientHello(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const (
		ips      = 20
		perIP    = 23 // under the default cap of 32
		crowded  = 40 // from one address, over the cap
		hostiles = ips*perIP + crowded
	)
	before := memInUse()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	var trickling []net.Conn
	open := func(ip string, kind int) {
		c, err := tryDialFrom(t, ip, ts.addr)
		if errors.Is(err, syscall.ECONNRESET) {
			return // refused for its address before connect returned
		}
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		switch kind % 4 {
		case 0: // idle: connects and sends nothing
		case 1: // half-open handshake
			c.Write(hello[:len(hello)/2])
		case 2: // trickles its handshake
			trickling = append(trickling, c)
		case 3: // completes a handshake, then idles
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
			tc.SetDeadline(time.Now().Add(5 * time.Second))
			if err := tc.Handshake(); err != nil {
				// Evicted before it finished: it holds a socket still.
				t.Logf("idle-after-handshake client: %v", err)
			}
		}
	}
	// The crowded address first: a full handshake budget is made room in
	// by closing the handshakes of the address holding the most, so one
	// that came last, holding the most, would lose its own handshakes as
	// fast as it opened them and never reach the cap.
	for k := range crowded {
		open("127.0.0.100", k)
	}
	for i := range ips {
		for k := range perIP {
			open(fmt.Sprintf("127.0.0.%d", 2+i), k)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		for i := 0; ; i++ {
			for _, c := range trickling {
				if i < len(hello) {
					c.Write(hello[i : i+1])
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	if !wait.Until(5*time.Second, func() bool { return ts.srv.Stats().Accepted >= hostiles }) {
		t.Fatalf("server accepted %d of %d hostile connections", ts.srv.Stats().Accepted, hostiles)
	}
	st := ts.srv.Stats()
	t.Logf("with %d hostile connections: %+v", hostiles, st)
	if st.RefusedPerIP != crowded-server.DefaultMaxConnsPerIP {
		t.Errorf("%d refused for their address, want %d", st.RefusedPerIP, crowded-server.DefaultMaxConnsPerIP)
	}
	if st.Open > server.DefaultMaxConns || st.Pending > server.DefaultMaxHandshakes {
		t.Errorf("server holds %d connections (%d pending), want at most %d (%d)", st.Open, st.Pending, server.DefaultMaxConns, server.DefaultMaxHandshakes)
	}
	if st.Evicted == 0 {
		t.Error("no connection evicted with more hostile connections than --max-conns")
	}

	// A good client, from an address of its own.
	served := make(chan error, 1)
	t0 := time.Now()
	go func() {
		// Not dialFrom: off the test's goroutine, a failure is sent, not
		// a t.Fatal. The source is 127.0.0.1, as the server's address.
		c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := tc.Write([]byte("good client\n")); err != nil {
			served <- err
			return
		}
		served <- tc.CloseWrite()
	}()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("good client: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("good client not through its handshake within 1s")
	}
	ts.rec.waitFor(t, time.Second-time.Since(t0), func(e server.Event) bool {
		return e.Kind == server.EventData && string(e.Data) == "good client"
	})

	// Both ends are in this process, and the count is of the connections
	// the server holds, not of the more the attacker does: an upper bound.
	grown := memInUse() - before
	perConn := grown / int64(max(1, ts.srv.Stats().Open))
	t.Logf("memory: %d KB in all, %d bytes per connection the server holds, %d per hostile connection", grown>>10, perConn, grown/hostiles)
	if perConn > 64<<10 {
		t.Errorf("memory per held connection %d bytes, want under 64 KB", perConn)
	}
}
