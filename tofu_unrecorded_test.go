package tlspin_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspin/tlspin"
)

// TestFirstUseThatCannotBeRecorded: a configuration that cannot record a
// peer after its handshake (ClientConfig, HookClientConfig: no address,
// no confirm) used to let tofu allow every server it had not recorded
// under that configuration's key, a bare host name that no recorded
// HOST:PORT matches: tofu enforced nothing, and a server with another key
// than the one recorded for its HOST:PORT was accepted. Such a first use
// is a rejection now, saying what records it; another verifier that
// allows without recording still can, with require any.
func TestFirstUseThatCannotBeRecorded(t *testing.T) {
	srv := newIdentity("server")
	addr := tlsServer(t, srv)
	_, port, _ := net.SplitHostPort(addr)
	impostor := newIdentity("server")
	dir := t.TempDir()
	pins := filepath.Join(dir, "known_pins")
	// The real server's key is recorded for localhost:PORT; the
	// configuration below meets the impostor there.
	record := start(t, []string{"tofu:file=" + pins})
	c, err := record.Dial(context.Background(), "tcp", "localhost:"+port)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	fake := tlsServer(t, impostor)
	recorded, _ := os.ReadFile(pins)

	tests := []struct {
		name    string
		specs   []string
		opts    []tlspin.Option
		config  func(v *tlspin.Verifiers) *tls.Config
		target  string
		allowed bool
	}{
		{"ClientConfig, an impostor", []string{"tofu:file=" + pins}, nil,
			func(v *tlspin.Verifiers) *tls.Config { return v.ClientConfig("localhost") }, fake, false},
		{"HookClientConfig, a new server", []string{"tofu:file=" + pins}, nil,
			func(v *tlspin.Verifiers) *tls.Config { return v.HookClientConfig(&tls.Config{}, "localhost") }, addr, false},
		{"require any, another verifier allows", []string{"tofu:file=" + pins, "sha256pin:pin=" + srv.sha}, []tlspin.Option{tlspin.WithRequire(tlspin.RequireAny)},
			func(v *tlspin.Verifiers) *tls.Config { return v.ClientConfig("localhost") }, addr, true},
		{"require all, another verifier allows too", []string{"tofu:file=" + pins, "sha256pin:pin=" + srv.sha}, nil,
			func(v *tlspin.Verifiers) *tls.Config { return v.ClientConfig("localhost") }, addr, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := start(t, tt.specs, tt.opts...)
			c, err := tls.Dial("tcp", tt.target, tt.config(v))
			if tt.allowed {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				c.Close()
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("ATTACK: allowed on a first use nothing records")
			}
			if !errors.Is(err, tlspin.ErrRejected) || !strings.Contains(err.Error(), "ClientConfigForAddr") {
				t.Errorf("err = %v, want a rejection saying what records a first use", err)
			}
		})
	}
	if now, _ := os.ReadFile(pins); string(now) != string(recorded) {
		t.Errorf("the pins file changed:\n%s", now)
	}
}

// TestCheckRecordsNothing: Check decides without a handshake, so tofu's
// first use, which it cannot record, is a rejection there too; before, an
// impostor's chain checked without its address (keyed by the bare name,
// not the recorded HOST:PORT) came back allowed.
func TestCheckRecordsNothing(t *testing.T) {
	srv := newIdentity("server")
	addr := tlsServer(t, srv)
	_, port, _ := net.SplitHostPort(addr)
	pins := filepath.Join(t.TempDir(), "known_pins")
	v := start(t, []string{"tofu:file=" + pins})
	c, err := v.Dial(context.Background(), "tcp", "localhost:"+port)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	impostor := newIdentity("server")
	for _, tt := range []struct {
		name string
		peer tlspin.Peer
		ok   bool
	}{
		{"the recorded server", tlspin.Peer{Chain: [][]byte{srv.cert.Leaf.Raw}, ServerName: "localhost", Addr: "localhost:" + port}, true},
		{"an impostor, with the address", tlspin.Peer{Chain: [][]byte{impostor.cert.Leaf.Raw}, ServerName: "localhost", Addr: "localhost:" + port}, false},
		{"an impostor, without the address", tlspin.Peer{Chain: [][]byte{impostor.cert.Leaf.Raw}, ServerName: "localhost"}, false},
		{"a new server", tlspin.Peer{Chain: [][]byte{impostor.cert.Leaf.Raw}, ServerName: "localhost", Addr: "localhost:1"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Check(context.Background(), tt.peer)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, tlspin.ErrRejected)) {
				t.Errorf("Check: %v, want allowed %v", err, tt.ok)
			}
		})
	}
}
