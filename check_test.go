package tlspin_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspin/tlspin"
)

// TestCheckRefusesWhatIsNotACertificate: a handshake never gets bytes that
// are not a certificate to the verifiers (crypto/tls parses the chain
// first), but Check takes its chain from the caller. Bytes whose hash is
// pinned, or a chain with garbage after a good leaf, must not come back
// allowed, and the error must say which element is bad.
func TestCheckRefusesWhatIsNotACertificate(t *testing.T) {
	srv := newIdentity("server")
	junk := []byte("not a certificate")
	sum := sha256.Sum256(junk)
	leafSum := sha256.Sum256(srv.cert.Leaf.Raw)
	for _, tt := range []struct {
		name  string
		pin   []byte
		chain [][]byte
		want  string
	}{
		{"junk whose hash is pinned", sum[:], [][]byte{junk}, "element 1 of 1"},
		{"a pinned leaf, then junk", leafSum[:], [][]byte{srv.cert.Leaf.Raw, junk}, "element 2 of 2"},
		{"an empty element", leafSum[:], [][]byte{srv.cert.Leaf.Raw, {}}, "element 2 of 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := start(t, []string{"sha256pin:pin=" + hex.EncodeToString(tt.pin)})
			verdicts, err := v.Check(context.Background(), tlspin.Peer{Chain: tt.chain, ServerName: "localhost"})
			if err == nil {
				t.Fatalf("ATTACK: allowed: %+v", verdicts)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "not a certificate") {
				t.Errorf("err = %v, want it to name %s", err, tt.want)
			}
			if errors.Is(err, tlspin.ErrRejected) {
				t.Errorf("err = %v: bad input is the caller's error, not a verifier's rejection", err)
			}
		})
	}
	// The good chain alone is allowed.
	v := start(t, []string{"sha256pin:pin=" + hex.EncodeToString(leafSum[:])})
	if _, err := v.Check(context.Background(), tlspin.Peer{Chain: [][]byte{srv.cert.Leaf.Raw}, ServerName: "localhost"}); err != nil {
		t.Errorf("the pinned leaf: %v", err)
	}
}

// TestClientConfigForAddrServesOneConnection: the configuration keeps
// what its connection would record, so a second connection through it
// could overwrite or commit the first one's. Its second handshake fails,
// saying what to do; a fresh configuration works.
func TestClientConfigForAddrServesOneConnection(t *testing.T) {
	srv := newIdentity("server")
	addr := tlsServer(t, srv)
	_, port, _ := net.SplitHostPort(addr)
	target := "localhost:" + port
	pins := filepath.Join(t.TempDir(), "known_pins")
	v := start(t, []string{"tofu:file=" + pins})
	ctx := context.Background()

	cfg, confirm := v.ClientConfigForAddr("localhost", target)
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("first connection: %v", err)
	}
	if err := confirm(ctx, c); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	c.Close()
	if c, err := tls.Dial("tcp", addr, cfg); err == nil {
		c.Close()
		t.Fatal("a second connection through one ClientConfigForAddr configuration was verified")
	} else if !strings.Contains(err.Error(), "call ClientConfigForAddr for each connection") {
		t.Errorf("second connection: %v, want it to say what to do", err)
	}
	cfg, _ = v.ClientConfigForAddr("localhost", target)
	c, err = tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("a fresh configuration for the recorded server: %v", err)
	}
	c.Close()
}
