package cli

import (
	"errors"
	"testing"
)

// TestPeerKeyIsTheVerifiersKey: `known-pins add` and `remove` name a peer
// as the tofu verifier keys it, however the address is spelled; a pin
// added under another spelling was never looked up, and the peer, taken
// for new, was recorded again with whatever key it presented.
func TestPeerKeyIsTheVerifiersKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Example.COM.:443", "example.com:443"},
		{"example.com:https", "example.com:443"},
		{"127.0.0.1:0443", "127.0.0.1:443"},
		{"[::FFFF:127.0.0.1]:443", "127.0.0.1:443"},
		{"[0:0:0:0:0:0:0:1]:8443", "[::1]:8443"},
		{"client@::ffff:10.0.0.7", "client@10.0.0.7"},
		{"CLIENT@2001:DB8:0::7", "client@2001:db8::7"},
	}
	for _, tt := range tests {
		got, err := peerKey(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("peerKey(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, tt := range []struct {
		spec, key string
		want      bool
	}{
		{"0::1", "[::1]:443", true},
		{"[::ffff:127.0.0.1]", "127.0.0.1:443", true},
		{"Example.com.", "example.com:8443", true},
		{"::ffff:10.0.0.7", "client@10.0.0.7", true},
		{"example.com:", "example.com:0", false},
	} {
		m, err := matchPeer(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := m(tt.key); got != tt.want {
			t.Errorf("matchPeer(%q)(%q) = %v, want %v", tt.spec, tt.key, got, tt.want)
		}
	}
}

// TestPeerKeyRefusesPortsNoPeerHas: `known-pins add` refuses, as a usage
// error, a key whose port no peer's key has. A URL (https://example.com
// splits as the host "https" and the port "//example.com") was recorded,
// and its pin applied to no peer.
func TestPeerKeyRefusesPortsNoPeerHas(t *testing.T) {
	for _, in := range []string{"https://example.com", "example.com:htps", "example.com:65536", "example.com:-1", "client@127.0.0.1:5000", "client@[::1]:5000"} {
		_, err := peerKey(in)
		if u := (usageError{}); !errors.As(err, &u) {
			t.Errorf("peerKey(%q) = %v, want a usage error", in, err)
		}
	}
	// A unix target's key, as tofu records it.
	for _, in := range []string{"unix:/run/x.sock", "db:/run/x.sock"} {
		if got, err := peerKey(in); err != nil || got != in {
			t.Errorf("peerKey(%q) = %q, %v; want it unchanged", in, got, err)
		}
	}
}
