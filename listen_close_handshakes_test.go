package tlspin_test

import (
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestListenerCloseEndsHandshakes: closing a Listen listener (as
// http.Server.Close and Shutdown do) while the Verifiers go on serving
// other listeners ends the handshakes it had in progress: no connection
// can be accepted from it any more, so they must not hold their
// descriptors and goroutines until DefaultHandshakeTimeout. A service that
// restarts its listener used to keep every stalled client of the old one
// for ten seconds.
func TestListenerCloseEndsHandshakes(t *testing.T) {
	v := start(t, []string{"spkipin:pin=" + newIdentity("client").spki})
	ln, err := v.Listen("tcp", "127.0.0.1:0", newIdentity("server").cert)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	clients := make([]net.Conn, n)
	for i := range clients {
		// A client that connects and never sends its ClientHello.
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	// Each accepted connection runs its handshake on a goroutine.
	if !wait.Until(5*time.Second, func() bool { return handshakeGoroutines() >= n }) {
		t.Fatalf("the listener did not begin the %d handshakes", n)
	}
	closed := time.Now()
	ln.Close()
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(tlspin.DefaultHandshakeTimeout / 2))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
			t.Fatalf("client %d: %v after the listener closed; want its connection closed", i, err)
		}
	}
	if took := time.Since(closed); took > tlspin.DefaultHandshakeTimeout/4 {
		t.Errorf("the handshakes in progress ended %s after the listener closed", took.Round(time.Millisecond))
	}
}

// handshakeGoroutines counts the goroutines of Listen listeners running
// a client's handshake.
func handshakeGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "tlspin.(*listener).serveHandshake(")
}

func isReset(err error) bool {
	ne, ok := err.(*net.OpError)
	return ok && !ne.Timeout()
}
