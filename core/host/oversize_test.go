package host_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
)

// TestOversizeRequestIsNotAFault: Check (and tlspin verify) take a chain
// and names from their caller, not from crypto/tls, which takes at most
// 256 KiB of certificates from a peer; a program may check certificates
// others submit. A request over the 1 MiB a channel's message carries
// reached no plugin (tlspin-builtins closed the connection on the
// oversize frame) and the host took that for a broken plugin: it
// restarted it, put the request to the new process, and restarted that
// one too, failing every verification in flight, on each such call. Over
// gRPC the same request was asked. Now one over verify.MaxRequestSize is
// rejected by the host without asking the plugin; only what the verifier
// is sent counts (the leaf alone for a verifier of leaves).
func TestOversizeRequestIsNotAFault(t *testing.T) { eachChannel(t, testOversizeRequestIsNotAFault) }

func testOversizeRequestIsNotAFault(t *testing.T, ch string) {
	good := newCert(t)
	// repeat returns good n times: a chain of about size bytes.
	repeat := func(size int) [][]byte {
		chain := make([][]byte, size/len(good)+1)
		for i := range chain {
			chain[i] = good
		}
		return chain
	}
	anyChain := startOver(t, ch, verify.Options{"pin": {md5hex(good)}, "chain": {"any"}})
	leafOnly := startOver(t, ch, verify.Options{"pin": {md5hex(good)}})
	tests := []struct {
		name  string
		p     *host.Plugin
		req   verify.Request
		allow bool
	}{
		{"chain over the cap", anyChain, verify.Request{PeerChain: repeat(1100 << 10)}, false},
		{"chain just over the cap", anyChain, verify.Request{PeerChain: repeat(verify.MaxRequestSize)}, false},
		{"server name over the cap", anyChain, verify.Request{PeerChain: [][]byte{good}, ServerName: strings.Repeat("a", 1100<<10)}, false},
		{"chain within the cap", anyChain, verify.Request{PeerChain: repeat(600 << 10)}, true},
		{"chain over the cap, leaf alone sent", leafOnly, verify.Request{PeerChain: repeat(1100 << 10)}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Side = verify.ClientVerifiesServer
			v, err := tc.p.Verify(context.Background(), &req)
			if err != nil {
				t.Fatalf("Verify: %v (restarts %d)", err, tc.p.Restarts())
			}
			if v.Allow != tc.allow {
				t.Fatalf("allow = %v, want %v (reason %.200q)", v.Allow, tc.allow, v.Reason)
			}
			if !tc.allow && !strings.Contains(v.Reason, "exceed the") {
				t.Errorf("reason %.200q does not say the request is too large", v.Reason)
			}
			if n := tc.p.Restarts(); n != 0 {
				t.Errorf("the plugin was restarted %d times", n)
			}
		})
	}
}

// startOver starts md5pin with opts over channel ch.
func startOver(t *testing.T, ch string, opts verify.Options) *host.Plugin {
	t.Helper()
	p, err := host.Start(context.Background(), md5Spec(t, ch, opts), host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
