package proxy_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/proxy"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestDialAndHandshakeTimeouts: the dial timeout alone bounds the dial
// to the target, and the handshake timeout the TLS handshake: in
// ServerMode the one with the client, from accept, before the target is
// dialled; in ClientMode the one with the target, from when the dial
// succeeded. A ClientMode handshake timeout shorter than the dial used to
// close the local client while the target was still being dialled.
func TestDialAndHandshakeTimeouts(t *testing.T) {
	good, srv := newCert(t, "good"), newCert(t, "server")
	tests := []struct {
		name            string
		mode            proxy.Mode
		dial, handshake time.Duration
		// late: the target's connect completes only after its first SYN
		// was dropped, then the target never answers the ClientHello; the
		// time is counted from when it accepted. Otherwise connects to the
		// target hang, and the time is counted from the client's connect.
		late bool
		// silent: the client sends no ClientHello (ServerMode).
		silent   bool
		want     string // which timeout the reason names
		min, max time.Duration
	}{
		{name: "client/dial timeout shorter", mode: proxy.ClientMode, dial: time.Second, handshake: 5 * time.Second, want: "dial timeout", min: 900 * time.Millisecond, max: 4 * time.Second},
		{name: "client/handshake timeout shorter", mode: proxy.ClientMode, dial: 4 * time.Second, handshake: time.Second, want: "dial timeout", min: 3 * time.Second, max: 8 * time.Second},
		{name: "client/handshake after a slow dial", mode: proxy.ClientMode, dial: 10 * time.Second, handshake: 1500 * time.Millisecond, late: true, want: "handshake timeout", min: time.Second, max: 5 * time.Second},
		{name: "server/dial timeout shorter", mode: proxy.ServerMode, dial: time.Second, handshake: 5 * time.Second, want: "dial timeout", min: 900 * time.Millisecond, max: 4 * time.Second},
		{name: "server/handshake timeout shorter", mode: proxy.ServerMode, dial: 4 * time.Second, handshake: time.Second, want: "dial timeout", min: 3 * time.Second, max: 8 * time.Second},
		{name: "server/silent client", mode: proxy.ServerMode, dial: time.Second, handshake: 2 * time.Second, silent: true, want: "handshake timeout", min: 1500 * time.Millisecond, max: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target, accept := hungTarget(t)
			cfg := proxy.Config{Mode: tt.mode, Target: target, DialTimeout: tt.dial}
			cfg.Limits.HandshakeTimeout = tt.handshake
			if tt.mode == proxy.ClientMode {
				cfg.TLS = pintls.ClientConfig(pinDecider{allow: srv.Leaf.Raw}, "", target, nil, pintls.Options{Timeout: time.Second})
			} else {
				cfg.TLS = pintls.ServerConfig(srv, pinDecider{allow: good.Leaf.Raw}, pintls.Options{Timeout: time.Second})
			}
			ev := &events{}
			cfg.OnEvent = ev.on
			addr, _ := run(t, cfg)

			began := time.Now()
			var c net.Conn
			var err error
			if tt.mode == proxy.ServerMode && !tt.silent {
				c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{good}})
			} else {
				c, err = net.Dial("tcp", addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			accepted := make(chan time.Time, 1)
			if tt.late {
				// Once the proxy's SYN was dropped, make room for its
				// next one, and hold the connection it makes.
				port := netip.MustParseAddrPort(target).Port()
				if !wait.Until(5*time.Second, func() bool { return synSent(t, port) }) {
					t.Fatal("the proxy never dialled the target")
				}
				go func() {
					if tc := accept(2); tc != nil {
						accepted <- time.Now()
						io.Copy(io.Discard, tc)
					}
				}()
			}
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			io.Copy(io.Discard, c)
			closed := time.Now()

			from := began
			if tt.late {
				select {
				case from = <-accepted:
				default:
					t.Fatalf("local client closed after %s, before the target accepted the proxy's connection", closed.Sub(began).Round(time.Millisecond))
				}
			}
			got, ok := waitEvent(ev, func(e proxy.Event) bool { return e.Kind != proxy.EventAccepted })
			if !ok {
				t.Fatal("no event for the closed connection")
			}
			took := closed.Sub(from)
			if took < tt.min || took > tt.max || !strings.Contains(got.Reason, tt.want) {
				t.Errorf("dial timeout %s, handshake timeout %s: closed after %s, %s: %q; want the %s, after %s to %s",
					tt.dial, tt.handshake, took.Round(time.Millisecond), got.Kind, got.Reason, tt.want, tt.min, tt.max)
			}
		})
	}
}

// hungTarget returns the address of a loopback listener whose accept
// queue is full and never drained unless accept is called: Linux drops
// the SYN of a connect to it, as from a host that does not answer, and
// retransmits it after a second. accept(n) takes n connections off the
// queue, making room for another, and returns the nth (nil if the
// listener closed); the test's end closes the listener and all of them.
func hungTarget(t *testing.T) (addr string, accept func(n int) net.Conn) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "backlog 0")
	defer f.Close()
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	hold := func(c net.Conn) { mu.Lock(); held = append(held, c); mu.Unlock() }
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	addr = ln.Addr().String()
	// Connect until a connect hangs: the queue is then full.
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return addr, func(n int) (last net.Conn) {
					for range n {
						c, err := ln.Accept()
						if err != nil {
							return nil
						}
						hold(c)
						last = c
					}
					return last
				}
			}
			t.Fatal(err)
		}
		hold(c)
	}
	t.Fatalf("%d connects to a listener with a backlog of 0 completed: this kernel does not make a full queue's connects hang", len(held))
	return "", nil
}

// synSent reports whether a connect to 127.0.0.1:port waits for its SYN
// to be answered.
func synSent(t *testing.T, port uint16) bool {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	remote := fmt.Sprintf("0100007F:%04X", port)
	s := bufio.NewScanner(f)
	for s.Scan() {
		// sl local_address rem_address st ...; st 02 is SYN_SENT.
		if fields := strings.Fields(s.Text()); len(fields) > 3 && fields[2] == remote && fields[3] == "02" {
			return true
		}
	}
	return false
}
