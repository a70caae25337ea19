package abort_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/abort"
)

// TestConn: the peer of a connection aborted under a TLS session reads a
// reset, where closing the session would have given it a clean end.
func TestConn(t *testing.T) {
	for _, tt := range []struct {
		name  string
		close func(*tls.Conn)
		reset bool
	}{
		{"aborted", func(c *tls.Conn) { abort.Conn(c) }, true},
		{"closed", func(c *tls.Conn) { c.Close() }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			key, leaf, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "server"})
			if err != nil {
				t.Fatal(err)
			}
			cert := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}
			got := make(chan error, 1)
			go func() {
				raw, err := ln.Accept()
				if err != nil {
					got <- err
					return
				}
				c := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{cert}})
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				_, err = io.ReadAll(c)
				got <- err
			}()
			c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("half a message")); err != nil {
				t.Fatal(err)
			}
			tt.close(c)
			err = <-got
			if reset := errors.Is(err, syscall.ECONNRESET); reset != tt.reset {
				t.Errorf("the peer read %v; want a reset %v", err, tt.reset)
			}
		})
	}
}
