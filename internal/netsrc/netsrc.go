// Package netsrc names the source a connection came from, as the bounds on
// what one client may cost count it: its IP address, or for IPv6 its /64,
// which one host commonly holds whole.
package netsrc

import (
	"net"
	"net/netip"
)

// Of returns the source of a connection whose remote address is addr: the
// IP address of a TCP or UDP peer (an IPv4 address mapped into IPv6 as
// IPv4, the zone dropped), for IPv6 its /64; the zero Addr for anything
// else (a unix socket's peer), so that all such peers share one source.
func Of(addr net.Addr) netip.Addr {
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		return netip.Addr{}
	}
	src, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	src = src.Unmap().WithZone("")
	if src.Is6() {
		src = netip.PrefixFrom(src, 64).Masked().Addr()
	}
	return src
}
