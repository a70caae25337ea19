package tlspin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/e2e"
)

// TestClientConfigForAddrConfirmsOnlyItsCompletedHandshake is the attack
// of a server that presents the real server's certificate without its
// key. crypto/tls calls VerifyConnection before it checks the server's
// signature (CertificateVerify in TLS 1.3, ServerKeyExchange in 1.2), so
// tofu allows the certificate as a first use and asks to record it; the
// handshake then fails. A caller that called confirm anyway ("defer
// confirm", or on every path) had tofu record the stolen certificate as
// the pin of the attacker's HOST:PORT: confirm could not know how the
// handshake ended. It takes the connection now, and records nothing
// unless that connection's handshake completed with the chain this
// configuration verified: not for a failed one, another connection, none,
// or one whose handshake has not run. A refusal is for good: the
// connection that proves the key afterwards (the real server, the same
// chain) records nothing through that configuration either. The
// connection verified, complete, is recorded, so that the test cannot
// pass by recording nothing.
func TestClientConfigForAddrConfirmsOnlyItsCompletedHandshake(t *testing.T) {
	victim, other := newIdentity("server"), newIdentity("other")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stolen := tls.Certificate{Certificate: victim.cert.Certificate, PrivateKey: key}
	stolenServer := func(version uint16) string {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{stolen}, MaxVersion: version})
		if err != nil {
			t.Fatal(err)
		}
		return e2e.Serve(t, ln, func(c net.Conn) { c.(*tls.Conn).Handshake() })
	}
	genuine, stolen13, stolen12, otherAddr := tlsServer(t, victim), stolenServer(tls.VersionTLS13), stolenServer(tls.VersionTLS12), tlsServer(t, other)
	// proof is a connection whose server proved the key of the victim's
	// certificate, made with another configuration.
	proof := func(t *testing.T, addr string) *tls.Conn {
		c, err := handshake(t, addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name      string
		addr      string
		handshake bool // whether the configuration's handshake succeeds
		// conn is what the caller gives confirm, given the
		// configuration's connection.
		conn     func(t *testing.T, c *tls.Conn) *tls.Conn
		recorded bool
	}{
		{"stolen certificate, TLS 1.3", stolen13, false, func(_ *testing.T, c *tls.Conn) *tls.Conn { return c }, false},
		{"stolen certificate, TLS 1.2", stolen12, false, func(_ *testing.T, c *tls.Conn) *tls.Conn { return c }, false},
		{"another connection", genuine, true, func(t *testing.T, _ *tls.Conn) *tls.Conn { return proof(t, otherAddr) }, false},
		{"no connection", genuine, true, func(*testing.T, *tls.Conn) *tls.Conn { return nil }, false},
		{"a connection before its handshake", genuine, true, func(t *testing.T, _ *tls.Conn) *tls.Conn {
			raw, err := net.DialTimeout("tcp", genuine, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { raw.Close() })
			return tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
		}, false},
		{"the connection verified", genuine, true, func(_ *testing.T, c *tls.Conn) *tls.Conn { return c }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pins := filepath.Join(t.TempDir(), "known_pins")
			v := start(t, []string{"tofu:file=" + pins})
			ctx := context.Background()
			cfg, confirm := v.ClientConfigForAddr("localhost", tt.addr)
			c, err := handshake(t, tt.addr, cfg)
			if (err == nil) != tt.handshake {
				t.Fatalf("the configuration's handshake: %v, want success %v", err, tt.handshake)
			}
			err = confirm(ctx, tt.conn(t, c))
			b, _ := os.ReadFile(pins)
			recorded := strings.Contains(string(b), strings.TrimPrefix(victim.spki, "sha256//"))
			if !tt.recorded {
				if recorded || len(b) > 0 {
					t.Errorf("ATTACK: confirm recorded a server that did not prove its key on the connection verified:\n%s", b)
				}
				if !errors.Is(err, tlspin.ErrBadArgument) || !strings.Contains(err.Error(), tt.addr) {
					t.Errorf("confirm = %v, want an error matching ErrBadArgument naming %s", err, tt.addr)
				}
				// For good: a connection to the real server, whose
				// chain is the one verified, records nothing either.
				if err := confirm(ctx, proof(t, genuine)); !errors.Is(err, tlspin.ErrBadArgument) {
					t.Errorf("confirm again, with a proven connection: %v, want the refusal", err)
				}
				if b, _ := os.ReadFile(pins); len(b) > 0 {
					t.Errorf("ATTACK: a confirm after its refusal recorded:\n%s", b)
				}
				return
			}
			if err != nil || !recorded {
				t.Fatalf("confirm = %v, recorded %v; want the server recorded:\n%s", err, recorded, b)
			}
			// Confirmed already: nothing left to record, nothing refused.
			if err := confirm(ctx, c); err != nil {
				t.Errorf("confirm again: %v", err)
			}
		})
	}
}

// handshake dials addr and completes a handshake with cfg; the
// connection is returned, closed at the end of the test, whatever the
// handshake's outcome.
func handshake(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, cfg)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c, c.HandshakeContext(ctx)
}
