package tlspin_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/e2e"
)

// TestConfirmAfterClose: a first use whose handshake succeeded before
// Close and whose record is confirmed after it cannot be recorded, and
// is rejected, failing closed; the error says why as the documentation
// promises of every error of a closed Verifiers: it matches ErrClosed, so
// that a service shutting down tells its own shutdown from a verifier
// that failed. It used to match only ErrVerifierFailed.
func TestConfirmAfterClose(t *testing.T) {
	srv, cli := newIdentity("server"), newIdentity("client")
	tests := []struct {
		name    string
		confirm func(t *testing.T, v *tlspin.Verifiers) error
	}{
		{"ClientConfigForAddr's confirm", func(t *testing.T, v *tlspin.Verifiers) error {
			addr := tlsServer(t, srv)
			cfg, confirm := v.ClientConfigForAddr("localhost", addr)
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			v.Close()
			return confirm(context.Background(), c)
		}},
		{"Confirm of tls.Server", func(t *testing.T, v *tlspin.Verifiers) error {
			cfg := v.ServerConfig(srv.cert)
			got := make(chan error, 1)
			addr := e2e.Serve(t, listen(t), func(raw net.Conn) {
				c := tls.Server(raw, cfg)
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if err := c.Handshake(); err != nil {
					got <- err
					return
				}
				v.Close()
				got <- v.Confirm(context.Background(), c)
			})
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cli.cert}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			return <-got
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := start(t, []string{"tofu:file=" + filepath.Join(t.TempDir(), "known_pins")})
			err := tt.confirm(t, v)
			var re *tlspin.RejectionError
			if !errors.As(err, &re) {
				t.Fatalf("confirm after Close: %v, want a *RejectionError", err)
			}
			if !errors.Is(err, tlspin.ErrClosed) || !errors.Is(err, tlspin.ErrVerifierFailed) || errors.Is(err, tlspin.ErrRejected) {
				t.Errorf("confirm after Close: ErrClosed %v, ErrVerifierFailed %v, ErrRejected %v, want true, true, false: %v",
					errors.Is(err, tlspin.ErrClosed), errors.Is(err, tlspin.ErrVerifierFailed), errors.Is(err, tlspin.ErrRejected), err)
			}
		})
	}
}
