package server

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/wait"
)

// addrConn is one end of a pipe that says it comes from remote.
type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// chanListener hands out the connections sent on it.
type chanListener struct {
	conns  chan net.Conn
	closed chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv6loopback} }

// TestPerIPCapCountsAnIPv6Slash64AsOne: an IPv6 host holds a whole /64
// and may connect from any of its addresses, so --max-conns-per-ip
// counts the /64 as one address (as the warnings and the library's
// Listen do); it used to count each address apart, and one host could
// hold every connection of the server.
func TestPerIPCapCountsAnIPv6Slash64AsOne(t *testing.T) {
	const perIP = 4
	for _, tt := range []struct {
		name    string
		from    []string
		refused uint64
	}{
		{"IPv4 addresses apart", []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}, 0},
		{"one IPv4 address", []string{"10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.1"}, 2},
		{"IPv4-mapped and plain IPv4", []string{"::ffff:10.0.0.1", "10.0.0.1", "::ffff:10.0.0.1", "10.0.0.1", "10.0.0.1", "::ffff:10.0.0.1"}, 2},
		{"one IPv6 /64", []string{"2001:db8::1", "2001:db8::2", "2001:db8::ffff:1", "2001:db8::1:0:0:3", "2001:db8:0:0:8000::4", "2001:db8::5"}, 2},
		{"IPv6 /64s apart", []string{"2001:db8:0:1::1", "2001:db8:0:2::1", "2001:db8:0:3::1", "2001:db8:0:4::1", "2001:db8:0:5::1", "2001:db8:0:6::1"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			loop := NewLoop(HandlerFunc(func(ctx context.Context, c *Conn) {
				c.Established()
				<-ctx.Done()
			}), Limits{MaxConnsPerIP: perIP, MaxConns: 64, GracePeriod: time.Millisecond}, nil)
			ln := &chanListener{conns: make(chan net.Conn), closed: make(chan struct{})}
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- loop.Serve(ctx, ln) }()
			defer func() { cancel(); <-served }()
			for _, from := range tt.from {
				ours, theirs := net.Pipe()
				defer theirs.Close()
				ip := netip.MustParseAddr(from)
				ln.conns <- addrConn{Conn: ours, remote: &net.TCPAddr{IP: ip.AsSlice(), Port: 40000}}
			}
			want := uint64(len(tt.from))
			if !wait.Until(10*time.Second, func() bool { return loop.Stats().Accepted == want }) {
				t.Fatalf("accepted %d, want %d", loop.Stats().Accepted, want)
			}
			if got := loop.Stats().RefusedPerIP; got != tt.refused {
				t.Errorf("refused %d for their address, want %d", got, tt.refused)
			}
		})
	}
}
