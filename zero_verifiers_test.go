package tlspin_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
)

// TestZeroVerifiers: a Verifiers not made by Start or StartWith (the zero
// value, new(tlspin.Verifiers), a nil pointer) has no verifiers. Every
// method fails closed with an error matching ErrBadArgument that says to
// use Start, and the configurations it returns reject every peer, saying
// so. Their handshakes used to panic on a nil context, as did every other
// method but those returning configurations.
func TestZeroVerifiers(t *testing.T) {
	srv, cli := newIdentity("server"), newIdentity("client")
	addr := tlsServer(t, srv)
	clientOf := func(cert tls.Certificate) *tls.Config {
		return &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}}
	}
	// serverRejects: a handshake with a client presenting its own
	// certificate fails on the server's side, which says why.
	serverRejects := func(t *testing.T, cfg *tls.Config) error {
		_, cerr, serr := handshakeOverTCP(t, clientOf(cli.cert), cfg)
		if cerr == nil || serr == nil {
			t.Errorf("ATTACK: the server's configuration accepted a client: client %v, server %v", cerr, serr)
		}
		return serr
	}
	methods := []struct {
		name string
		// call returns the error that must match ErrBadArgument.
		call func(t *testing.T, v *tlspin.Verifiers) error
	}{
		{"Close", func(t *testing.T, v *tlspin.Verifiers) error { return v.Close() }},
		{"Names", func(t *testing.T, v *tlspin.Verifiers) error {
			if n := v.Names(); len(n) != 0 {
				t.Errorf("Names = %q, want none", n)
			}
			return nil
		}},
		{"Stats", func(t *testing.T, v *tlspin.Verifiers) error {
			if s := v.Stats(); s != (tlspin.Stats{}) {
				t.Errorf("Stats = %+v, want zero", s)
			}
			return nil
		}},
		{"Check", func(t *testing.T, v *tlspin.Verifiers) error {
			verdicts, err := v.Check(context.Background(), tlspin.Peer{Chain: srv.cert.Certificate, ServerName: "localhost"})
			if err == nil {
				t.Errorf("ATTACK: Check allowed the peer: %+v", verdicts)
			}
			return err
		}},
		{"ClientConfig", func(t *testing.T, v *tlspin.Verifiers) error {
			_, err := handshake(t, addr, v.ClientConfig("localhost"))
			if err == nil {
				t.Error("ATTACK: the handshake accepted the server")
			}
			return err
		}},
		{"HookClientConfig", func(t *testing.T, v *tlspin.Verifiers) error {
			_, err := handshake(t, addr, v.HookClientConfig(&tls.Config{}, "localhost"))
			if err == nil {
				t.Error("ATTACK: the handshake accepted the server")
			}
			return err
		}},
		{"ClientConfigForAddr", func(t *testing.T, v *tlspin.Verifiers) error {
			cfg, confirm := v.ClientConfigForAddr("localhost", addr)
			c, err := handshake(t, addr, cfg)
			if err == nil {
				t.Error("ATTACK: the handshake accepted the server")
			}
			if cerr := confirm(context.Background(), c); !errors.Is(cerr, tlspin.ErrBadArgument) {
				t.Errorf("confirm = %v, want an error matching ErrBadArgument", cerr)
			}
			return err
		}},
		{"ServerConfig", func(t *testing.T, v *tlspin.Verifiers) error {
			return serverRejects(t, v.ServerConfig(srv.cert))
		}},
		{"HookServerConfig", func(t *testing.T, v *tlspin.Verifiers) error {
			return serverRejects(t, v.HookServerConfig(&tls.Config{Certificates: []tls.Certificate{srv.cert}}))
		}},
		{"HookServerConfig without a certificate", func(t *testing.T, v *tlspin.Verifiers) error {
			// As net/http's ServeTLS serves it: a copy with one.
			cfg := v.HookServerConfig(&tls.Config{}).Clone()
			cfg.Certificates = []tls.Certificate{srv.cert}
			return serverRejects(t, cfg)
		}},
		{"Confirm", func(t *testing.T, v *tlspin.Verifiers) error {
			c, err := handshake(t, addr, clientOf(cli.cert))
			if err != nil {
				t.Fatal(err)
			}
			return v.Confirm(context.Background(), c)
		}},
		{"Confirm nil", func(t *testing.T, v *tlspin.Verifiers) error { return v.Confirm(context.Background(), nil) }},
		{"Dial", func(t *testing.T, v *tlspin.Verifiers) error {
			c, err := v.Dial(context.Background(), "tcp", addr)
			if err == nil {
				c.Close()
				t.Error("ATTACK: Dial accepted the server")
			}
			return err
		}},
		{"Listen", func(t *testing.T, v *tlspin.Verifiers) error {
			ln, err := v.Listen("tcp", "127.0.0.1:0", srv.cert)
			if err == nil {
				ln.Close()
				t.Error("Listen listened")
			}
			return err
		}},
		{"Watch", func(t *testing.T, v *tlspin.Verifiers) error {
			revoked := make(chan error, 2)
			stop := v.Watch(tlspin.Peer{Chain: srv.cert.Certificate, ServerName: "localhost", Addr: addr}, time.Time{}, func(err error) { revoked <- err })
			defer stop()
			select {
			case err := <-revoked:
				return err
			case <-time.After(10 * time.Second):
				t.Error("Watch did not revoke the connection")
				return nil
			}
		}},
	}
	receivers := []struct {
		name string
		v    func() *tlspin.Verifiers
	}{
		{"zero value", func() *tlspin.Verifiers { var v tlspin.Verifiers; return &v }},
		{"new", func() *tlspin.Verifiers { return &tlspin.Verifiers{} }},
		{"nil", func() *tlspin.Verifiers { return nil }},
	}
	for _, r := range receivers {
		for _, m := range methods {
			t.Run(r.name+"/"+m.name, func(t *testing.T) {
				var err error
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Fatalf("panicked: %v", p)
						}
					}()
					err = m.call(t, r.v())
				}()
				if m.name == "Names" || m.name == "Stats" {
					return // no error to return
				}
				if !errors.Is(err, tlspin.ErrBadArgument) || !strings.Contains(err.Error(), "Start") {
					t.Errorf("error = %v, want one matching ErrBadArgument that says to use Start", err)
				}
				if errors.Is(err, tlspin.ErrRejected) || errors.Is(err, tlspin.ErrVerifierFailed) {
					t.Errorf("error = %v matches ErrRejected or ErrVerifierFailed: it is a misuse", err)
				}
			})
		}
	}
}
