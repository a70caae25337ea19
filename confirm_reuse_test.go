package tlspin_test

import (
	"errors"
	"testing"

	"github.com/tlspin/tlspin"
)

// TestClientConfigForAddrUsedTwice: a configuration of
// ClientConfigForAddr verifies one server, once; a second handshake with
// it fails, and its error is a misuse, matching ErrBadArgument, not a
// rejection of the server. It matched neither, so a program branching on
// the documented errors could not tell it from an unexpected failure.
func TestClientConfigForAddrUsedTwice(t *testing.T) {
	srv := newIdentity("server")
	addr := tlsServer(t, srv)
	v := start(t, []string{"spkipin:pin=" + srv.spki})
	cfg, _ := v.ClientConfigForAddr("localhost", addr)
	if _, err := handshake(t, addr, cfg); err != nil {
		t.Fatalf("first handshake: %v", err)
	}
	_, err := handshake(t, addr, cfg)
	if err == nil {
		t.Fatal("a second handshake with the configuration succeeded")
	}
	const want = "tlspin: this configuration from ClientConfigForAddr has verified a server already: call ClientConfigForAddr for each connection"
	if err.Error() != want {
		t.Errorf("second handshake: %q, want %q", err, want)
	}
	if !errors.Is(err, tlspin.ErrBadArgument) {
		t.Errorf("second handshake: %v, does not match ErrBadArgument", err)
	}
	if errors.Is(err, tlspin.ErrRejected) || errors.Is(err, tlspin.ErrVerifierFailed) {
		t.Errorf("second handshake: %v matches a rejection: it is a misuse", err)
	}
}
