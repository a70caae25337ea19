package tofu

import (
	"path/filepath"
	"testing"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/verifiers/internal/vtest"
)

// TestOnePeerSpelledTwoWays: the key a pin is recorded under, written one
// way (by tofu itself, `known-pins add` or an editor), and a connection to
// the same server dialled another way: an IPv6 address in another form,
// an IPv4 address mapped into IPv6, a port with a leading zero or by its
// service name, a name with its root's trailing dot. Each dials the one
// server, yet its key used to differ, so a man-in-the-middle met there
// was taken for a first use and recorded beside the pin.
func TestOnePeerSpelledTwoWays(t *testing.T) {
	real := vtest.New(t, vtest.Spec{CN: "real"})
	mitm := vtest.New(t, vtest.Spec{CN: "mitm"})
	d, _ := pin.Sum(pin.SPKI, real.DER())
	realPin := entry(pin.Pin{Algo: pin.SPKI, Digest: d})
	tests := []struct {
		name     string
		recorded string // the key as written in the file
		req      verify.Request
	}{
		{"IPv6 zeros written out", "[0:0:0:0:0:0:0:1]:8443", verify.Request{RemoteAddr: "[::1]:8443"}},
		{"IPv6 recorded, written out dialled", "[::1]:8443", verify.Request{RemoteAddr: "[0::1]:8443"}},
		{"IPv6 upper case with zeros", "[2001:DB8:0:0::1]:443", verify.Request{RemoteAddr: "[2001:db8::1]:443"}},
		{"IPv4 mapped into IPv6 dialled", "127.0.0.1:443", verify.Request{RemoteAddr: "[::ffff:127.0.0.1]:443"}},
		{"IPv4 mapped into IPv6 recorded", "[::ffff:127.0.0.1]:443", verify.Request{RemoteAddr: "127.0.0.1:443"}},
		{"port with a leading zero", "127.0.0.1:443", verify.Request{RemoteAddr: "127.0.0.1:0443"}},
		{"port by its service name", "127.0.0.1:443", verify.Request{RemoteAddr: "127.0.0.1:https"}},
		{"port by its service name recorded", "example.com:https", verify.Request{ServerName: "example.com", RemoteAddr: "192.0.2.1:443"}},
		{"trailing dot recorded", "Example.COM.:443", verify.Request{ServerName: "example.com", RemoteAddr: "192.0.2.1:443"}},
		{"client mapped address", "client@::ffff:10.0.0.7", verify.Request{Side: verify.ServerVerifiesClient, RemoteAddr: "10.0.0.7:51234"}},
		{"client IPv6 zeros", "client@2001:db8:0:0:0:0:0:7", verify.Request{Side: verify.ServerVerifiesClient, RemoteAddr: "[2001:db8::7]:51234"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "known")
			vtest.WriteFile(t, path, []byte(tt.recorded+" "+realPin+"\n"))
			v, err := newTofu(t, verify.Options{"file": {path}})
			if err != nil {
				t.Fatal(err)
			}
			r := tt.req
			r.PeerChain = vtest.Chain(mitm)
			if verdict := vtest.Handshake(t, v, &r); verdict.Allow {
				t.Errorf("ATTACK: %s recorded, another key allowed at %+v: %s", tt.recorded, tt.req, verdict.Matched)
			}
			r.PeerChain = vtest.Chain(real)
			if verdict := vtest.Handshake(t, v, &r); !verdict.Allow {
				t.Errorf("the recorded key rejected: %s", verdict.Reason)
			}
		})
	}
}
