package tlspin_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/e2e"
)

// TestDialGivesUpOnAStallingServer: a server that accepts and never
// answers the ClientHello, or trickles its answer, cannot hold Dial
// forever when its context never ends (as net/http's DialTLSContext gets
// one, without its own TLSHandshakeTimeout): the handshake is bounded by
// WithHandshakeTimeout, and the error says so. Dial waited as long as the
// server wished.
func TestDialGivesUpOnAStallingServer(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, tt := range []struct {
		name   string
		server func(net.Conn)
	}{
		{"silent", func(c net.Conn) { io.Copy(io.Discard, c) }},
		{"trickles", func(c net.Conn) {
			// A TLS record header, a byte at a time: every read gets
			// something, so no per-read timeout would fire.
			for _, b := range []byte{0x16, 0x03, 0x03, 0x40, 0x00} {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(timeout / 4)
			}
			io.Copy(io.Discard, c)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := e2e.Serve(t, ln, tt.server)
			v := start(t, []string{"spkipin:pin=" + newIdentity("server").spki}, tlspin.WithHandshakeTimeout(timeout))
			done := make(chan error, 1)
			go func() {
				c, err := v.Dial(context.Background(), "tcp", addr)
				if err == nil {
					c.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not finish within 300ms") {
					t.Errorf("err = %v; want the handshake timeout, saying so", err)
				}
			case <-time.After(20 * timeout):
				t.Fatal("Dial still waits for a server that stalls its handshake")
			}
		})
	}
}

// TestListenHandshakeTimeout: a client that connects and never sends a
// ClientHello is closed after WithHandshakeTimeout.
func TestListenHandshakeTimeout(t *testing.T) {
	v := start(t, []string{"spkipin:pin=" + newIdentity("client").spki}, tlspin.WithHandshakeTimeout(200*time.Millisecond))
	ln, err := v.Listen("tcp", "127.0.0.1:0", newIdentity("server").cert)
	if err != nil {
		t.Fatal(err)
	}
	addr := e2e.Serve(t, ln, func(c net.Conn) {})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(tlspin.DefaultHandshakeTimeout / 2))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Errorf("read: %v; want the listener to close the silent client after 200ms", err)
	}
}

// TestBadHandshakeTimeout: a handshake timeout must be positive.
func TestBadHandshakeTimeout(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		v, err := tlspin.StartWith(context.Background(), []string{"spkipin"}, tlspin.WithHandshakeTimeout(d))
		if err == nil {
			v.Close()
			t.Fatalf("WithHandshakeTimeout(%s): started", d)
		}
		if !errors.Is(err, tlspin.ErrBadConfig) || !strings.Contains(err.Error(), "WithHandshakeTimeout("+d.String()+")") {
			t.Errorf("WithHandshakeTimeout(%s): err = %v; want ErrBadConfig quoting it", d, err)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestDialHandshakeTimeoutBoundsTheVerification: WithHandshakeTimeout
// bounds Dial's handshake with its verification, as documented, when the
// verify timeout is longer: a verifier that hangs held Dial until the
// verify timeout, whatever the handshake timeout said. A Listen
// listener's verification already ended with its handshake's.
func TestDialHandshakeTimeoutBoundsTheVerification(t *testing.T) {
	const timeout = 300 * time.Millisecond
	addr := tlsServer(t, newIdentity("server"))
	v := start(t, []string{"misbehave:mode=hang"}, tlspin.WithPluginDirs(misbehaveDir(t)),
		tlspin.WithHandshakeTimeout(timeout), tlspin.WithVerifyTimeout(time.Minute))
	begun := time.Now()
	c, err := v.Dial(context.Background(), "tcp", addr)
	took := time.Since(begun)
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded with a verifier that never answers")
	}
	if took > 10*timeout {
		t.Errorf("Dial returned after %s, with a handshake timeout of %s: %v", took.Round(time.Millisecond), timeout, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not finish within 300ms") {
		t.Errorf("err = %v; want the handshake timeout, saying so", err)
	}
}
