//go:build unix

package tlspin_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/core/pintls"
)

// TestConfirmTwice is the misuse of a program that calls confirm again
// after it refused a first use (ErrVerifierFailed says trying again may
// succeed): the second call returned nil, as if the record had been
// made, and the program used a connection the verifiers had not
// allowed: its server or client's first use was never recorded, or
// another key was recorded for it meanwhile. Every later call now
// returns the first call's refusal.
func TestConfirmTwice(t *testing.T) {
	again := func(t *testing.T, confirm func() error) {
		t.Helper()
		first := confirm()
		var re *tlspin.RejectionError
		if !errors.As(first, &re) {
			t.Fatalf("first confirm: %v; want a *RejectionError (the test proves nothing)", first)
		}
		for i := 2; i <= 3; i++ {
			err := confirm()
			if err == nil {
				t.Fatalf("ATTACK: confirm call %d returned nil after the first refused: %v", i, first)
			}
			if !errors.As(err, &re) || errors.Is(err, tlspin.ErrRejected) != errors.Is(first, tlspin.ErrRejected) {
				t.Errorf("confirm call %d: %v; want the first call's refusal: %v", i, err, first)
			}
		}
	}

	t.Run("ClientConfigForAddr: another key recorded meanwhile", func(t *testing.T) {
		c, confirm := firstUseRecordedMeanwhile(t)
		again(t, func() error { return confirm(context.Background(), c) })
	})

	// A server's Confirm, for a client whose first use it no longer
	// has a record for (dropped), or for which another key was recorded
	// meanwhile.
	for _, tt := range []struct {
		name   string
		before func(t *testing.T, v *tlspin.Verifiers, pins string)
	}{
		{"Confirm: record dropped", func(_ *testing.T, v *tlspin.Verifiers, _ string) {
			tlspin.FloodPending(v, pintls.MaxPending)
		}},
		{"Confirm: another key recorded meanwhile", func(t *testing.T, _ *tlspin.Verifiers, pins string) {
			there := start(t, []string{"tofu:file=" + pins})
			ln, err := there.Listen("tcp", "127.0.0.1:0", newIdentity("server").cert)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				if c, err := ln.Accept(); err == nil {
					c.Close()
				}
			}()
			if err := handshakeAs(ln.Addr().String(), "127.0.0.1", newIdentity("other client").cert); err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("recording another key for the client: %v", err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pins := filepath.Join(t.TempDir(), "known_pins")
			v := start(t, []string{"tofu:file=" + pins})
			ln := listen(t)
			conns := make(chan *tls.Conn, 1)
			go func() {
				raw, err := ln.Accept()
				if err != nil {
					close(conns)
					return
				}
				raw.SetDeadline(time.Now().Add(10 * time.Second))
				c := tls.Server(raw, v.ServerConfig(newIdentity("server").cert))
				if err := c.Handshake(); err != nil {
					raw.Close()
					close(conns)
					return
				}
				conns <- c
			}()
			d := &net.Dialer{Timeout: 10 * time.Second}
			cc, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{newIdentity("client").cert}})
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			c, ok := <-conns
			if !ok {
				t.Fatal("the server's handshake failed")
			}
			defer c.Close()
			tt.before(t, v, pins)
			again(t, func() error { return v.Confirm(context.Background(), c) })
		})
	}
}
