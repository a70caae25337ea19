package tlspin_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestListenBoundsHandshakes: a client can connect and never say hello.
// Without a bound, each such connection held a goroutine and a file
// descriptor for the whole handshake timeout, so one host could open them
// faster than they expired and starve the server of descriptors. With
// WithMaxHandshakes(4), ten silent connections leave four open: the
// oldest are closed to make room (and said so), and a client that does
// its handshake still gets through.
func TestListenBoundsHandshakes(t *testing.T) {
	good := newIdentity("good")
	logs := &syncbuf.Buffer{}
	v := start(t, []string{"spkipin:pin=" + good.spki}, tlspin.WithMaxHandshakes(4),
		tlspin.WithLogger(hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})))
	ln, err := v.Listen("tcp", "127.0.0.1:0", newIdentity("server").cert)
	if err != nil {
		t.Fatal(err)
	}
	addr := e2e.Serve(t, ln, func(net.Conn) {})

	const silent, bound = 10, 4
	var conns []net.Conn
	for range silent {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	// closed reports whether the server closed c within d; well within
	// the handshake timeout, which would close them all anyway.
	closed := func(c net.Conn, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		_, err := c.Read(make([]byte, 1))
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}
	for i, c := range conns[:silent-bound] {
		if !closed(c, tlspin.DefaultHandshakeTimeout/2) {
			t.Fatalf("silent connection %d of %d still open with %d newer ones; want the oldest closed to keep %d", i+1, silent, silent-1-i, bound)
		}
	}
	for i, c := range conns[silent-bound:] {
		if closed(c, 100*time.Millisecond) {
			t.Errorf("silent connection %d of %d closed; want the %d newest kept", silent-bound+i+1, silent, bound)
		}
	}
	if !wait.Until(10*time.Second, func() bool { return strings.Contains(logs.String(), "closed to make room for a newer client") }) {
		t.Errorf("no log says why the connections were closed:\n%s", logs.String())
	}

	// With four silent connections held, a real client still gets in.
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{good.cert}})
	if err != nil {
		t.Fatalf("a client that does its handshake: %v", err)
	}
	c.Close()
}

func TestWithMaxHandshakesRefusesZero(t *testing.T) {
	_, err := tlspin.StartWith(context.Background(), []string{"spkipin:pin=sha256//" + strings.Repeat("A", 43) + "="}, tlspin.WithMaxHandshakes(0))
	if !errors.Is(err, tlspin.ErrBadConfig) || !strings.Contains(err.Error(), "WithMaxHandshakes(0): want at least 1") {
		t.Fatalf("StartWith(WithMaxHandshakes(0)) = %v; want ErrBadConfig naming it", err)
	}
}

// TestCloseEndsListeners: after the Verifiers close, every handshake of
// their listeners fails; the listeners close too, so that Accept (and
// http.Serve on it) returns instead of turning clients away for ever.
func TestCloseEndsListeners(t *testing.T) {
	v, err := tlspin.Start(context.Background(), "spkipin:pin="+newIdentity("good").spki)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := v.Listen("tcp", "127.0.0.1:0", newIdentity("server").cert)
	if err != nil {
		v.Close()
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() { served <- http.Serve(ln, http.NotFoundHandler()) }()
	v.Close()
	select {
	case err := <-served:
		if !errors.Is(err, tlspin.ErrClosed) || !errors.Is(err, net.ErrClosed) {
			t.Errorf("http.Serve = %v; want ErrClosed and net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("http.Serve still running 10 s after the Verifiers closed")
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts connections after the Verifiers closed")
	}
}

// slowConn is a client connection on a long path: every write after the
// first (the ClientHello) leaves rtt after it is made.
type slowConn struct {
	net.Conn
	rtt    time.Duration
	writes int
}

func (c *slowConn) Write(b []byte) (int, error) {
	if c.writes++; c.writes > 1 {
		time.Sleep(c.rtt) // the network's latency, not a wait for readiness
	}
	return c.Conn.Write(b)
}

// TestListenEvictsTheFloodingAddress: with the bound reached, the
// handshake closed to make room is one of the address holding the most.
// Closing the oldest of all let one host that opens silent connections
// faster than WithMaxHandshakes per handshake time (here 8 per 150 ms;
// 1024 per 150 ms by default, a few thousand a second) close every
// handshake of a client on a long path, so that none got in.
func TestListenEvictsTheFloodingAddress(t *testing.T) {
	good := newIdentity("good")
	v := start(t, []string{"spkipin:pin=" + good.spki}, tlspin.WithMaxHandshakes(8), tlspin.WithLogger(hclog.NewNullLogger()))
	ln, err := v.Listen("tcp", "127.0.0.1:0", newIdentity("server").cert)
	if err != nil {
		t.Fatal(err)
	}
	addr := e2e.Serve(t, ln, func(c net.Conn) { io.WriteString(c, "ok") })

	stop := make(chan struct{})
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if c, err := net.Dial("tcp", addr); err == nil {
				held = append(held, c)
			}
		}
	}()
	defer func() { close(stop); <-flooded }()

	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("no second loopback address to dial from: %v", err)
	}
	c := tls.Client(&slowConn{Conn: raw, rtt: 150 * time.Millisecond},
		&tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{good.cert}})
	defer c.Close()
	c.SetDeadline(time.Now().Add(tlspin.DefaultHandshakeTimeout))
	b := make([]byte, 2)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "ok" {
		t.Fatalf("client on a long path while another address floods: %q, %v; want it served", b, err)
	}
}
