package tlspin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/server"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestConfirmRecordsOnlyProvenClients is the attack of a client that
// presents another client's certificate without its key. crypto/tls asks
// the verifiers before it checks the client's signature, so tofu allows
// the certificate and asks to record it; the handshake then fails. Such a
// client must never be recorded, and nothing may be kept for it: each
// attempt used to hold its chain for a minute, without bound. A client
// that proves its key is recorded, so that the test cannot pass by
// recording nothing. The three ways a server confirms: a program's own
// tls.Server with Confirm, Listen, and tlspin's server (serve, proxy).
func TestConfirmRecordsOnlyProvenClients(t *testing.T) {
	serve := map[string]func(t *testing.T, v *tlspin.Verifiers, cert tls.Certificate) string{
		"own server and Confirm": func(t *testing.T, v *tlspin.Verifiers, cert tls.Certificate) string {
			cfg := v.ServerConfig(cert)
			return e2e.Serve(t, listen(t), func(raw net.Conn) {
				c := tls.Server(raw, cfg)
				c.SetDeadline(time.Now().Add(10 * time.Second))
				herr := c.Handshake()
				if err := v.Confirm(context.Background(), c); err != nil {
					t.Errorf("Confirm: %v", err)
				}
				if herr == nil {
					io.Copy(io.Discard, c)
				}
			})
		},
		"Listen": func(t *testing.T, v *tlspin.Verifiers, cert tls.Certificate) string {
			ln, err := v.Listen("tcp", "127.0.0.1:0", cert)
			if err != nil {
				t.Fatal(err)
			}
			return e2e.Serve(t, ln, func(c net.Conn) { io.Copy(io.Discard, c) })
		},
		"tlspin's server": func(t *testing.T, v *tlspin.Verifiers, cert tls.Certificate) string {
			srv, err := server.New(server.Config{TLS: v.ServerConfig(cert), Confirm: v.Confirm, Output: io.Discard, MaxConnsPerIP: -1})
			if err != nil {
				t.Fatal(err)
			}
			ln := listen(t)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, ln) }()
			t.Cleanup(func() { cancel(); <-done })
			return ln.Addr().String()
		},
	}
	for name, serve := range serve {
		t.Run(name, func(t *testing.T) {
			pins := filepath.Join(t.TempDir(), "known_pins")
			v := start(t, []string{"tofu:file=" + pins})
			addr := serve(t, v, newIdentity("server").cert)
			victim, honest := newIdentity("victim"), newIdentity("honest")
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			forged := tls.Certificate{Certificate: victim.cert.Certificate, PrivateKey: key}
			for range 20 {
				if err := handshakeAs(addr, "127.0.0.1", forged); err == nil {
					t.Fatal("a client without the key of its certificate completed the handshake")
				}
			}
			if !wait.Until(5*time.Second, func() bool { return v.Stats().Unconfirmed == 0 }) {
				t.Fatalf("%d failed handshakes still kept for Confirm", v.Stats().Unconfirmed)
			}
			// From another address: tofu holds the one the forged
			// certificate came from for that key for a minute.
			if err := handshakeAs(addr, "127.0.0.2", honest.cert); err != nil {
				b, _ := os.ReadFile(pins)
				t.Fatalf("the honest client: %v; recorded: %s", err, b)
			}
			recorded := func(id identity) bool {
				b, _ := os.ReadFile(pins)
				return strings.Contains(string(b), strings.TrimPrefix(id.spki, "sha256//"))
			}
			if !wait.Until(5*time.Second, func() bool { return recorded(honest) }) {
				t.Fatal("the honest client was not recorded")
			}
			if recorded(victim) {
				t.Error("ATTACK: the victim's pin was recorded for a client that did not hold its key")
			}
		})
	}
}

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// handshakeAs connects from localIP with cert and returns what ended the connection
// other than the server closing it after a handshake it accepted: in TLS
// 1.3 the client's side of the handshake ends before the server has
// checked the client's signature, and a refusal comes as an alert.
func handshakeAs(addr, localIP string, cert tls.Certificate) error {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil // the server holds the connection open: accepted
	}
	return err
}
