// Package abort ends a connection so that its peer sees an error, never
// the clean end of a stream: what tlspin gives up on halfway (a message
// interrupted, a line the output could not take, a reset passed on by the
// proxy) must not pass for whole.
package abort

import "net"

// Conn closes the socket at the bottom of c (under a TLS session and any
// wrapper with a NetConn method), sending nothing of the layers above:
// no close_notify, which is the clean end of a TLS stream. A TCP socket is
// reset (SO_LINGER 0), since a FIN at a record boundary is taken for a
// clean end too (crypto/tls does so); another socket is closed. A unix
// socket has no reset: its peer sees the end of the stream, as at a clean
// close (Linux reports an error only when what the peer sent was left
// unread), so over one only TLS's missing close_notify, or a protocol's
// own framing, tells a cut from a whole stream. Closing c afterwards
// sends nothing.
func Conn(c net.Conn) {
	for {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok || u.NetConn() == nil {
			break
		}
		c = u.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
