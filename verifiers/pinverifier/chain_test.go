package pinverifier_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/verifiers/internal/vtest"
	"github.com/tlspin/tlspin/verifiers/md5pin"
	"github.com/tlspin/tlspin/verifiers/pinverifier"
	"github.com/tlspin/tlspin/verifiers/sha256pin"
	"github.com/tlspin/tlspin/verifiers/spkipin"
)

// TestForgedChains is the attack first: a peer appends public CA and
// intermediate certificates (or the legitimate leaf) to a leaf of its own.
// Only the leaf's key is proved in the handshake, so a pin on anything
// after the leaf must hold only when the leaf chains to it by signature.
func TestForgedChains(t *testing.T) {
	root := vtest.New(t, vtest.Spec{CN: "Root CA", IsCA: true})
	inter := vtest.New(t, vtest.Spec{CN: "Intermediate CA", IsCA: true, Issuer: root})
	leaf := vtest.New(t, vtest.Spec{CN: "server", SANs: []string{"localhost"}, Issuer: inter})
	direct := vtest.New(t, vtest.Spec{CN: "server", SANs: []string{"localhost"}, Issuer: root})
	attacker := vtest.New(t, vtest.Spec{CN: "server", SANs: []string{"localhost"}})
	// The attacker's own CA issuing a leaf, with the real CA appended.
	evilCA := vtest.New(t, vtest.Spec{CN: "Root CA", IsCA: true})
	evilLeaf := vtest.New(t, vtest.Spec{CN: "server", Issuer: evilCA})
	// Issued by a certificate that is not a CA (basic constraints).
	notCA := vtest.New(t, vtest.Spec{CN: "not a CA", Issuer: root})
	underNotCA := vtest.New(t, vtest.Spec{CN: "server", Issuer: notCA})
	clientOnly := vtest.New(t, vtest.Spec{CN: "client", Issuer: root, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	past := time.Now().AddDate(-2, 0, 0)
	expiredCA := vtest.New(t, vtest.Spec{CN: "Expired CA", IsCA: true, NotBefore: past, NotAfter: past.AddDate(1, 0, 0)})
	underExpired := vtest.New(t, vtest.Spec{CN: "server", Issuer: expiredCA, NotBefore: past})

	const (
		broken  = "chain does not lead from the leaf to the pinned certificate"
		bounded = "the peer sent more than 4 certificates that match a pin"
	)
	tests := []struct {
		name   string
		chain  string // leaf, any or ca
		pinned *vtest.Cert
		sent   [][]byte
		side   verify.Side
		allow  bool
		reason string
	}{
		{"ca: real chain, root pinned", "ca", root, vtest.Chain(leaf, inter, root), 0, true, ""},
		{"ca: real chain, intermediate pinned", "ca", inter, vtest.Chain(leaf, inter, root), 0, true, ""},
		{"ca: root pinned, root not sent", "ca", root, vtest.Chain(leaf, inter), 0, false, "mismatch"},
		{"ca: chain sent out of order", "ca", root, vtest.Chain(leaf, root, inter), 0, true, ""},
		{"ca: attacker leaf + real root", "ca", root, vtest.Chain(attacker, root), 0, false, broken},
		{"ca: attacker leaf + real intermediate", "ca", inter, vtest.Chain(attacker, inter), 0, false, broken},
		{"ca: attacker leaf + real intermediate + root", "ca", root, vtest.Chain(attacker, inter, root), 0, false, broken},
		{"ca: attacker CA's leaf + its CA + real root", "ca", root, vtest.Chain(evilLeaf, evilCA, root), 0, false, broken},
		{"ca: leaf under a non-CA pinned", "ca", notCA, vtest.Chain(underNotCA, notCA, root), 0, false, "not a CA"},
		{"ca: leaf under a non-CA, root pinned", "ca", root, vtest.Chain(underNotCA, notCA, root), 0, false, broken},
		{"ca: client-only leaf as a server", "ca", root, vtest.Chain(clientOnly, root), verify.ClientVerifiesServer, false, broken},
		{"ca: client-only leaf as a client", "ca", root, vtest.Chain(clientOnly, root), verify.ServerVerifiesClient, true, ""},
		{"ca: expired CA", "ca", expiredCA, vtest.Chain(underExpired, expiredCA), 0, false, "expired"},
		{"ca: directly issued", "ca", root, vtest.Chain(direct, root), 0, true, ""},
		{"any: leaf pinned", "any", leaf, vtest.Chain(leaf, inter, root), 0, true, ""},
		{"any: root pinned", "any", root, vtest.Chain(leaf, inter, root), 0, true, ""},
		{"any: attacker leaf + real leaf", "any", leaf, vtest.Chain(attacker, leaf), 0, false, broken},
		{"any: attacker leaf + real leaf + chain", "any", leaf, vtest.Chain(attacker, leaf, inter, root), 0, false, broken},
		{"any: attacker leaf + real root", "any", root, vtest.Chain(attacker, root), 0, false, broken},
		{"leaf: attacker leaf + real leaf", "leaf", leaf, vtest.Chain(attacker, leaf), 0, false, "mismatch"},
	}
	verifiers := []struct {
		name string
		new  func() *pinverifier.Verifier
		algo pin.Algo
	}{
		{"md5pin", func() *pinverifier.Verifier { return md5pin.New(nil) }, pin.MD5},
		{"sha256pin", func() *pinverifier.Verifier { return sha256pin.New(nil) }, pin.SHA256},
		{"spkipin", func() *pinverifier.Verifier { return spkipin.New(nil) }, pin.SPKI},
	}
	for _, tt := range tests {
		for _, vv := range verifiers {
			t.Run(vv.name+"/"+tt.name, func(t *testing.T) {
				v := vv.new()
				if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{
					"pin": {tt.pinned.Pin(t, vv.algo, pin.FormatHex)}, "chain": {tt.chain},
				}}); err != nil {
					t.Fatal(err)
				}
				side := tt.side
				if side == verify.SideUnspecified {
					side = verify.ClientVerifiesServer
				}
				got := vtest.Verify(t, v, &verify.Request{PeerChain: tt.sent, Side: side, RemoteAddr: "127.0.0.1:8443"})
				if got.Allow != tt.allow {
					t.Fatalf("allow = %v, want %v (reason %q)", got.Allow, tt.allow, got.Reason)
				}
				if !got.Allow && !strings.Contains(got.Reason, tt.reason) {
					t.Errorf("reason %q does not say %q", got.Reason, tt.reason)
				}
				if got.Allow && got.CacheFor > pinverifier.CacheFor {
					t.Errorf("cache for %s, more than %s", got.CacheFor, pinverifier.CacheFor)
				}
			})
		}
	}
}

// TestChainVerdictNotCachedPastExpiry: an allow through a chain is never
// reused past the earliest NotAfter on the verified path.
func TestChainVerdictNotCachedPastExpiry(t *testing.T) {
	now := time.Now()
	root := vtest.New(t, vtest.Spec{CN: "Root CA", IsCA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(20 * time.Second)})
	leaf := vtest.New(t, vtest.Spec{CN: "server", Issuer: root, NotBefore: now.Add(-time.Hour)})
	v := pinverifier.New(pinverifier.Info{Name: "t", Algo: pin.SHA256, Now: func() time.Time { return now }})
	if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{
		"pin": {root.Pin(t, pin.SHA256, pin.FormatHex)}, "chain": {"ca"},
	}}); err != nil {
		t.Fatal(err)
	}
	got := vtest.Verify(t, v, &verify.Request{PeerChain: vtest.Chain(leaf, root)})
	if !got.Allow {
		t.Fatal(got.Reason)
	}
	if got.CacheFor > 20*time.Second {
		t.Errorf("cached for %s, past the root's expiry in 20s", got.CacheFor)
	}
}

// TestFindOrder: the leaf is tried first with chain=any, and a broken
// candidate does not hide a later proved one.
func TestFindOrder(t *testing.T) {
	root := vtest.New(t, vtest.Spec{CN: "Root CA", IsCA: true})
	other := vtest.New(t, vtest.Spec{CN: "Other CA", IsCA: true})
	leaf := vtest.New(t, vtest.Spec{CN: "server", Issuer: root})
	req := &verify.Request{PeerChain: vtest.Chain(leaf, other, root), Side: verify.ClientVerifiesServer}
	matchAll := func(int, []byte) (bool, error) { return true, nil }
	f, err := pinverifier.Find(pinverifier.ChainAny, req, time.Now(), matchAll)
	if err != nil || f == nil || f.Index != 0 {
		t.Errorf("any: Find = %+v, %v; want the leaf", f, err)
	}
	f, err = pinverifier.Find(pinverifier.ChainCA, req, time.Now(), matchAll)
	if err != nil || f == nil || f.Index != 2 {
		t.Errorf("ca: Find = %+v, %v; want #2 (the real root, past the unrelated #1)", f, err)
	}
	onlyOther := func(_ int, der []byte) (bool, error) { return bytes.Equal(der, other.DER()), nil }
	if f, err = pinverifier.Find(pinverifier.ChainCA, req, time.Now(), onlyOther); f != nil || err == nil {
		t.Errorf("ca, unrelated CA pinned: Find = %+v, %v; want a broken-chain error", f, err)
	}
}

// TestMatchedNamesThePin: an allow names the pin that let the peer in, in
// the form it was given: a backup pin, a CA's pin past a pin that matched
// a certificate the leaf does not chain to, a pin deep in a long chain.
func TestMatchedNamesThePin(t *testing.T) {
	root := vtest.New(t, vtest.Spec{CN: "Root CA", IsCA: true})
	inter := vtest.New(t, vtest.Spec{CN: "Intermediate CA", IsCA: true, Issuer: root})
	leaf := vtest.New(t, vtest.Spec{CN: "server", SANs: []string{"localhost"}, Issuer: inter})
	other := vtest.New(t, vtest.Spec{CN: "Other CA", IsCA: true})
	unrelated := vtest.New(t, vtest.Spec{CN: "unrelated"})
	pinOf := func(c *vtest.Cert) string { return c.Pin(t, pin.SHA256, pin.FormatHex) }
	tests := []struct {
		name  string
		chain string
		pins  []*vtest.Cert
		sent  [][]byte
		want  *vtest.Cert
	}{
		{"backup pin", "leaf", []*vtest.Cert{unrelated, leaf}, vtest.Chain(leaf, inter, root), leaf},
		{"first of two", "leaf", []*vtest.Cert{leaf, unrelated}, vtest.Chain(leaf), leaf},
		{"ca, past an unrelated CA", "ca", []*vtest.Cert{other, root}, vtest.Chain(leaf, other, inter, root), root},
		{"any, the leaf first", "any", []*vtest.Cert{root, leaf}, vtest.Chain(leaf, inter, root), leaf},
		{"ca, sixth of a long chain", "ca", []*vtest.Cert{root}, vtest.Chain(leaf, other, other, other, inter, root), root},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := verify.Options{"chain": {tt.chain}}
			for _, c := range tt.pins {
				opts["pin"] = append(opts["pin"], pinOf(c))
			}
			v := sha256pin.New(nil)
			if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: opts}); err != nil {
				t.Fatal(err)
			}
			got := vtest.Verify(t, v, &verify.Request{PeerChain: tt.sent, Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:8443"})
			if want := "sha256:" + pinOf(tt.want); !got.Allow || got.Matched != want {
				t.Errorf("verdict %+v; want an allow matching %s", got, want)
			}
		})
	}
}

// TestManyMatchesAreBounded: the peer chooses how many certificates of its
// chain match a pin, and it is asked before it proves it holds any key. A
// chain filled (to the 256 KiB crypto/tls accepts) with the pinned root, or
// with certificates the attacker made for the pinned key (a key pin does
// not see their signatures), used to cost a path build, and a parse of the
// whole chain, per match: seconds of CPU for one handshake, past the
// host's 5 s verify timeout, which restarts the plugin. A real chain that
// repeats its root is still allowed at once.
func TestManyMatchesAreBounded(t *testing.T) {
	root := vtest.New(t, vtest.Spec{CN: "Root CA", IsCA: true})
	leaf := vtest.New(t, vtest.Spec{CN: "server", SANs: []string{"localhost"}, Issuer: root})
	// The attacker's CA has the root's name, so that each certificate
	// made for the root's key is a candidate issuer at every step.
	evilCA := vtest.New(t, vtest.Spec{CN: "Root CA", IsCA: true})
	attacker := vtest.New(t, vtest.Spec{CN: "server", SANs: []string{"localhost"}, Issuer: evilCA})
	// forged is a CA certificate for the root's key and subject, signed by
	// the attacker: all a key pin needs to match.
	forged := func() []byte {
		tpl := *root.Cert
		serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
		if err != nil {
			t.Fatal(err)
		}
		tpl.SerialNumber = serial
		der, err := x509.CreateCertificate(rand.Reader, &tpl, evilCA.Cert, root.Key.Public(), evilCA.Key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	// fill appends certificates made by next to the chain while it stays
	// within what crypto/tls accepts in one Certificate message.
	fill := func(chain [][]byte, next func() []byte) [][]byte {
		const max = 256 << 10
		size := 0
		for _, der := range chain {
			size += len(der) + 3
		}
		for {
			der := next()
			if size+len(der)+3 > max {
				return chain
			}
			chain = append(chain, der)
			size += len(der) + 3
		}
	}
	rootDER := func() []byte { return root.DER() }
	const (
		broken  = "chain does not lead from the leaf to the pinned certificate"
		bounded = "the peer sent more than 4 certificates that match a pin"
	)
	tests := []struct {
		name  string
		algo  pin.Algo
		new   func() *pinverifier.Verifier
		chain string
		sent  [][]byte
		allow bool
	}{
		{"sha256: the pinned root over and over", pin.SHA256, func() *pinverifier.Verifier { return sha256pin.New(nil) }, "ca", fill(vtest.Chain(attacker), rootDER), false},
		{"md5: the pinned root over and over, chain=any", pin.MD5, func() *pinverifier.Verifier { return md5pin.New(nil) }, "any", fill(vtest.Chain(attacker), rootDER), false},
		{"spki: certificates made for the pinned key", pin.SPKI, func() *pinverifier.Verifier { return spkipin.New(nil) }, "ca", fill(vtest.Chain(attacker), forged), false},
		{"spki: the real leaf, then forged certificates", pin.SPKI, func() *pinverifier.Verifier { return spkipin.New(nil) }, "ca", fill(vtest.Chain(leaf, root), forged), true},
		{"sha256: the real chain repeating its root", pin.SHA256, func() *pinverifier.Verifier { return sha256pin.New(nil) }, "ca", fill(vtest.Chain(leaf), rootDER), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.new()
			if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{
				"pin": {root.Pin(t, tt.algo, pin.FormatHex)}, "chain": {tt.chain},
			}}); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			got := vtest.Verify(t, v, &verify.Request{PeerChain: tt.sent, Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:8443"})
			// Bounded, a few tens of milliseconds; unbounded, seconds
			// (8 to 12 on a slow machine, without the race detector).
			t.Logf("%d certificates decided on in %s", len(tt.sent), time.Since(start))
			if got.Allow != tt.allow {
				t.Fatalf("allow = %v, want %v (reason %.300q)", got.Allow, tt.allow, got.Reason)
			}
			// The bound, not the time it saves: no timing assertion.
			if !got.Allow && (!strings.Contains(got.Reason, broken) || !strings.Contains(got.Reason, bounded)) {
				t.Errorf("reason %.300q does not say %q and %q", got.Reason, broken, bounded)
			}
		})
	}
}
