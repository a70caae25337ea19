package netsrc

import (
	"net"
	"net/netip"
	"testing"
)

func TestOf(t *testing.T) {
	for _, tt := range []struct {
		name string
		addr net.Addr
		want netip.Addr
	}{
		{"IPv4", &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 443}, netip.MustParseAddr("192.0.2.7")},
		{"IPv4 as 4 bytes", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7).To4()}, netip.MustParseAddr("192.0.2.7")},
		{"IPv4 mapped into IPv6", &net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7")}, netip.MustParseAddr("192.0.2.7")},
		{"IPv6: its /64", &net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6")}, netip.MustParseAddr("2001:db8:1:2::")},
		{"IPv6 with a zone", &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0"}, netip.MustParseAddr("fe80::")},
		{"UDP", &net.UDPAddr{IP: net.ParseIP("127.0.0.1")}, netip.MustParseAddr("127.0.0.1")},
		{"unix socket", &net.UnixAddr{Name: "@", Net: "unix"}, netip.Addr{}},
		{"no IP", &net.TCPAddr{}, netip.Addr{}},
		{"nil", nil, netip.Addr{}},
	} {
		if got := Of(tt.addr); got != tt.want {
			t.Errorf("%s: Of(%v) = %v, want %v", tt.name, tt.addr, got, tt.want)
		}
	}
}

// TestOneHostOneSource: the addresses of one IPv6 /64 are one source;
// the next /64 is another.
func TestOneHostOneSource(t *testing.T) {
	a := Of(&net.TCPAddr{IP: net.ParseIP("2001:db8::1")})
	b := Of(&net.TCPAddr{IP: net.ParseIP("2001:db8::ffff:ffff:ffff:ffff")})
	c := Of(&net.TCPAddr{IP: net.ParseIP("2001:db8:0:1::1")})
	if a != b || a == c {
		t.Errorf("sources %v, %v, %v: want the first two equal, the third apart", a, b, c)
	}
}
