package tlspin_test

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestListenFloodDoesNotHideARejection: clients that send bytes that are
// not TLS, which anyone who can connect can do by the thousand, must not
// use up the warnings about clients the verifiers rejected: each has its
// own bound. They shared one: eleven such connections sent the next
// rejection, in the same second, to debug level.
func TestListenFloodDoesNotHideARejection(t *testing.T) {
	const flood = 30
	good, forged := newIdentity("good"), newIdentity("forged")
	addr, out := listenLogged(t, good)
	for range flood {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
		io.Copy(io.Discard, c)
		c.Close()
	}
	if !wait.Until(5*time.Second, func() bool { return strings.Count(out.String(), "client handshake failed") >= flood }) {
		t.Fatalf("the flood was not logged:\n%s", out.String())
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{forged.cert}})
	if err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c) // TLS 1.3: the rejection arrives on the first read
		c.Close()
	}
	warned := func() bool {
		for line := range strings.Lines(out.String()) {
			if strings.Contains(line, "[WARN]") && strings.Contains(line, forged.sha) {
				return true
			}
		}
		return false
	}
	if !wait.Until(5*time.Second, warned) {
		t.Errorf("after %d connections that were not TLS, the rejected client was not warned about:\n%s", flood, out.String())
	}
}

// TestListenOneSourceDoesNotHideAnother: a client who completes
// handshakes the verifiers reject (a junk certificate) must not push the
// rejections of other clients to debug level: each source has a share of
// the bound. Thirty such handshakes from one address sent the next
// rejection, from another address in the same second, to debug level.
func TestListenOneSourceDoesNotHideAnother(t *testing.T) {
	const flood = 30
	good, junk, other := newIdentity("good"), newIdentity("junk"), newIdentity("other")
	addr, out := listenLogged(t, good)
	e2e.FloodFrom(t, "127.0.0.1", addr, junk.cert, flood)
	e2e.HandshakeFrom(t, "127.0.0.2", addr, other.cert)
	logged := func() bool { return strings.Count(out.String(), "client handshake failed") >= flood+1 }
	if !wait.Until(5*time.Second, logged) {
		t.Fatalf("the rejections were not all logged:\n%s", out.String())
	}
	for line := range strings.Lines(out.String()) {
		if strings.Contains(line, "[WARN]") && strings.Contains(line, other.sha) {
			return
		}
	}
	t.Errorf("after %d rejections from 127.0.0.1, the client rejected from 127.0.0.2 was not warned about:\n%s", flood, out.String())
}
