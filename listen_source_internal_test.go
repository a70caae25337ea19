package tlspin

import (
	"net"
	"net/netip"
	"testing"
)

// addrConn is a connection from addr.
type addrConn struct {
	net.Conn
	addr net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.addr }

// TestSource: a client's handshakes are counted under its IPv4 address,
// or the /64 of its IPv6 one, which one host commonly holds whole.
func TestSource(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want netip.Addr
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}, netip.MustParseAddr("192.0.2.7")},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, netip.MustParseAddr("192.0.2.7")},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1"), Port: 1}, netip.MustParseAddr("2001:db8:1:2::")},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1, Zone: "eth0"}, netip.MustParseAddr("fe80::")},
		{&net.UnixAddr{Name: "@x", Net: "unix"}, netip.Addr{}},
	}
	for _, tt := range tests {
		t.Run(tt.addr.String(), func(t *testing.T) {
			if got := source(addrConn{addr: tt.addr}); got != tt.want {
				t.Errorf("source(%s) = %v; want %v", tt.addr, got, tt.want)
			}
		})
	}
}
