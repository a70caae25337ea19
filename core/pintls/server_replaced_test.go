package pintls_test

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/core/verify"
)

// TestServerConfigChooserReplaced is the attack of any client
// certificate on a server whose program set its own GetConfigForClient
// on ServerConfig's configuration (to choose ALPN per client, say),
// returning nil or the configuration itself, or removed it: the
// verification lived in the chooser alone, and the configuration, which
// requires a client certificate without checking it, accepted any. The
// configuration itself now verifies as well.
func TestServerConfigChooserReplaced(t *testing.T) {
	for _, tt := range []struct {
		name    string
		replace func(*tls.Config)
	}{
		{"returns nil", func(c *tls.Config) {
			c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return nil, nil }
		}},
		{"returns itself", func(c *tls.Config) {
			c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return c, nil }
		}},
		{"removed", func(c *tls.Config) { c.GetConfigForClient = nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &decider{} // rejects every client
			srv := pintls.ServerConfig(serverCert(t), d, pintls.Options{Timeout: time.Second})
			tt.replace(srv)
			cli := &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{serverCert(t)}}
			err := serverHandshake(t, srv, cli)
			if err == nil {
				t.Fatal("ATTACK: a client the verifier rejects was accepted")
			}
			if !errors.Is(err, verify.ErrRejected) {
				t.Errorf("err = %v; want the verifier's rejection", err)
			}
			if d.calls.Load() == 0 {
				t.Error("the verifier was never asked")
			}
		})
	}
}

// serverHandshake runs a handshake between srv and cli over loopback TCP
// and returns the server's error.
func serverHandshake(t *testing.T, srv, cli *tls.Config) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Client(c, cli)
		if tc.Handshake() == nil {
			tc.Read(make([]byte, 1)) // until the server's verdict
		}
	}()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	return tls.Server(raw, srv).Handshake()
}
