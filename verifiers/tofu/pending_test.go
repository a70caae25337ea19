package tofu

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/verifiers/internal/vtest"
)

// TestManyFirstUsesCostEachLittle: a client with no key presents a
// certificate to a tofu server and stops before proving it; its address
// is a first use waiting a minute to be recorded. From many addresses
// (an IPv6 /64 has plenty; 127/8 on loopback), the pending pins were
// all looked at by every verification, under the lock every other one
// waits on: 100,000 of them made each Verify take 1.5 ms, an attacker's
// handshakes costing tofu quadratically. Forgetting the expired looks at
// no more pins than it forgets, and forgets them all after the minute.
func TestManyFirstUsesCostEachLittle(t *testing.T) {
	v, err := newTofu(t, verify.Options{"file": {filepath.Join(t.TempDir(), "known")}})
	if err != nil {
		t.Fatal(err)
	}
	start := v.now()
	cert := vtest.New(t, vtest.Spec{CN: "a"})
	const clients = 5000
	for i := range clients {
		// a second apart: the first have expired by the end
		at := start.Add(time.Duration(i) * 100 * time.Millisecond)
		v.now = func() time.Time { return at }
		r := &verify.Request{PeerChain: vtest.Chain(cert), RemoteAddr: fmt.Sprintf("[2001:db8::%x]:5000", i), Side: verify.ServerVerifiesClient}
		if verdict := vtest.Verify(t, v, r); !verdict.Allow {
			t.Fatalf("client %d: %+v", i, verdict)
		}
	}
	if v.looked > 2*clients {
		t.Errorf("%d first uses looked at %d pending pins to forget the expired; want at most %d", clients, v.looked, 2*clients)
	}
	if want := int(pendingFor / (100 * time.Millisecond)); len(v.pending) > want {
		t.Errorf("%d pins pending; want at most the %d of the last minute", len(v.pending), want)
	}
}
