package compare_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/compare"
)

func TestFillLabel(t *testing.T) {
	tests := []struct {
		name    string
		opts    verify.Options
		label   string
		fill    bool
		errWant string // in the error, which wraps ErrBadFill
	}{
		{"spkipin", verify.Options{"chain": {"ca"}}, "spkipin:chain=ca", true, ""},
		{"spkipin", verify.Options{"chain": {"CA"}, "ca": {"issuer"}}, "spkipin:chain=ca", true, ""},
		{"spkipin", verify.Options{"chain": {"ca"}, "ca": {"root"}}, "spkipin:chain=ca,ca=root", true, ""},
		{"sha256pin", verify.Options{"chain": {"any"}}, "sha256pin:chain=any", true, ""},
		{"md5pin", verify.Options{"chain": {"ca"}}, "md5pin:chain=ca", true, ""},
		{"allowlist", verify.Options{"chain": {"ca"}, "ca": {"Root"}}, "allowlist:chain=ca,ca=root", true, ""},
		// chain=leaf without a pin is the recipe: the verifier's own column.
		{"spkipin", verify.Options{"chain": {"leaf"}}, "spkipin", true, ""},
		// A pin or a file given: the options are used as given.
		{"spkipin", verify.Options{"chain": {"ca"}, "pin": {"x"}}, "spkipin", false, ""},
		{"allowlist", verify.Options{"chain": {"ca"}, "file": {"f"}}, "allowlist", false, ""},
		// Not a pin verifier: as given.
		{"tofu", verify.Options{"chain": {"ca"}}, "tofu", false, ""},
		{"other", verify.Options{"chain": {"ca"}}, "other", false, ""},
		{"spkipin", verify.Options{"chain": {"ca"}, "ca": {"leaf"}}, "", false, `ca "leaf"`},
		{"spkipin", verify.Options{"chain": {"leaf"}, "ca": {"root"}}, "", false, `ca "root" needs chain=ca or chain=any`},
		{"spkipin", verify.Options{"ca": {"root"}}, "", false, `ca "root" needs chain=ca or chain=any`},
		{"spkipin", verify.Options{"chain": {"top"}}, "", false, `chain "top"`},
		{"spkipin", verify.Options{"chain": {"ca", "any"}}, "", false, "chain given twice"},
		{"spkipin", verify.Options{"chain": {"ca"}, "ca": {"root", "issuer"}}, "", false, "ca given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name+":"+tt.label+tt.errWant, func(t *testing.T) {
			label, fill, err := compare.FillLabel(tt.name, tt.opts)
			if tt.errWant != "" {
				if !errors.Is(err, compare.ErrBadFill) || !strings.Contains(err.Error(), tt.errWant) {
					t.Fatalf("err = %v, want ErrBadFill saying %q", err, tt.errWant)
				}
				return
			}
			if err != nil || label != tt.label || fill != tt.fill {
				t.Fatalf("= %q, %v, %v; want %q, %v", label, fill, err, tt.label, tt.fill)
			}
		})
	}
}

// TestTrustCA: a CA pin is filled in with the certificate the label
// names: the intermediate that issued the reference (what its server
// sends after the leaf), or the root; in the format of the verifier.
func TestTrustCA(t *testing.T) {
	ref, err := compare.NewReference(certs.ECDSA)
	if err != nil {
		t.Fatal(err)
	}
	inter := ref.Leaf.Certificate[1]
	root := ref.CA.Raw
	hexOf := func(a pin.Algo, der []byte) string {
		d, err := pin.Sum(a, der)
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(d)
	}
	spkiOf := func(der []byte) string {
		d, _ := pin.Sum(pin.SPKI, der)
		p, err := pin.Print(pin.SPKI, d, pin.FormatBase64)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		label     string
		chain     string
		pin       string // the pin option, or the line the allowlist file holds
		pinBytes  int
		noteWants []string
	}{
		{"spkipin:chain=ca", "ca", spkiOf(inter), pin.SPKI.Size(), []string{"intermediate", "chain=ca", "by signature", "ca=root"}},
		{"spkipin:chain=ca,ca=root", "ca", spkiOf(root), pin.SPKI.Size(), []string{"root", "does not send it", "--send-root"}},
		{"spkipin:chain=any", "any", spkiOf(inter), pin.SPKI.Size(), []string{"intermediate", "chain=any"}},
		{"sha256pin:chain=ca", "ca", hexOf(pin.SHA256, inter), pin.SHA256.Size(), []string{"intermediate"}},
		{"md5pin:chain=ca", "ca", hexOf(pin.MD5, inter), pin.MD5.Size(), []string{"collision-broken"}},
		{"allowlist:chain=ca,ca=root", "ca", "sha256:" + hexOf(pin.SHA256, root), pin.SHA256.Size(), []string{"root"}},
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			tr, err := compare.TrustReference(tt.label, ref, t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := tr.Options["chain"]; len(got) != 1 || got[0] != tt.chain {
				t.Errorf("chain = %q, want %q", got, tt.chain)
			}
			if _, ok := tr.Options["ca"]; ok {
				t.Error("ca, compare's own option, is passed on to the verifier")
			}
			if f := tr.Options["file"]; len(f) == 1 {
				b, err := os.ReadFile(f[0])
				if err != nil || !strings.Contains(string(b), tt.pin+" ") {
					t.Errorf("allowlist file %q lacks %q (%v)", b, tt.pin, err)
				}
			} else if got := tr.Options["pin"]; len(got) != 1 || got[0] != tt.pin {
				t.Errorf("pin = %q, want %q", got, tt.pin)
			}
			if tr.PinBytes != tt.pinBytes {
				t.Errorf("pin bytes = %d, want %d", tr.PinBytes, tt.pinBytes)
			}
			for _, s := range tt.noteWants {
				if !strings.Contains(tr.Note, s) {
					t.Errorf("note %q does not say %q", tr.Note, s)
				}
			}
		})
	}
	// Sent, a root pin is not said to reject everything.
	tr, err := compare.TrustReference("spkipin:chain=ca,ca=root", ref.SendingRoot(), t.TempDir(), nil)
	if err != nil || strings.Contains(tr.Note, "does not send it") {
		t.Errorf("root sent: note %q, %v", tr.Note, err)
	}
	// A self-signed reference has no CA to pin.
	key, crt, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "self.test", SANs: []string{"self.test"}})
	if err != nil {
		t.Fatal(err)
	}
	self := selfSignedRef(t, key, crt)
	if _, err := compare.TrustReference("spkipin:chain=ca", self, t.TempDir(), nil); !errors.Is(err, compare.ErrBadFill) || !strings.Contains(err.Error(), "self-signed") {
		t.Errorf("self-signed reference: err = %v, want ErrBadFill saying self-signed", err)
	}
	// Nor a CA that issues its renewals: the ca verifier is given the
	// reference itself, and its note must not promise what the matrix
	// shows it does not do.
	caDesc := &verify.Description{Options: []verify.Option{{Name: "ca"}}}
	for _, tc := range []struct {
		name string
		ref  *compare.Reference
		want string
		not  string
	}{
		{"issued by a CA", ref, "survives renewal and re-keying", "the reference is self-signed"},
		{"self-signed", self, "every renewal needs the new certificate", "survives"},
	} {
		tr, err := compare.TrustReference("ca", tc.ref, t.TempDir(), caDesc)
		if err != nil || !strings.Contains(tr.Note, tc.want) || strings.Contains(tr.Note, tc.not) {
			t.Errorf("ca, %s: note %q, %v; want it to say %q and not %q", tc.name, tr.Note, err, tc.want, tc.not)
		}
	}
}

func selfSignedRef(t *testing.T, key crypto.Signer, crt *x509.Certificate) *compare.Reference {
	t.Helper()
	kp, err := certs.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "self.pem")
	writePEM(t, f, kp, certs.EncodeCert(crt))
	r, err := compare.LoadReference(f, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCAPinVerdicts runs each CA-pin strategy on every scenario, with the
// built-in verifiers in process, and checks its verdict and why.
func TestCAPinVerdicts(t *testing.T) {
	gen, err := compare.NewReference(certs.ECDSA)
	if err != nil {
		t.Fatal(err)
	}
	const A, R = true, false
	type want struct {
		accept bool
		why    string // in the reason (or whyElse)
	}
	// What a pin verifier says, by chain mode and verifier, when no
	// certificate it may match is pinned.
	const noMatch, whyElse = "no certificate of the chain", "sent only its leaf"
	// A pin on the intermediate that issued the reference.
	issuer := map[string]want{
		// The leaf chains to the pinned intermediate by signature.
		compare.Same: {A, "matched"}, compare.Renewed: {A, "matched"},
		// Any key the pinned intermediate signs for: the point of a CA pin.
		compare.Rekeyed: {A, "matched"},
		// The other CA's server sends only its leaf: nothing to match.
		compare.OtherCA: {R, noMatch},
		// Self-signed, no intermediate.
		compare.Lookalike: {R, noMatch},
		// The real intermediate is in the chain, but the attacker's leaf
		// is not signed by it: a presence is not a proof.
		compare.ForgedChain: {R, "does not lead from the leaf to the pinned certificate"},
		// The verifier allows the genuine chain; the peer cannot sign.
		compare.StolenCertNoKey: {R, "did not prove it holds the certificate's private key"},
		// Path validation checks dates, unlike a pin on the leaf's key.
		compare.Expired: {R, "expired"},
		// The pinned intermediate is no longer sent (or used).
		compare.IntermediateRotated: {R, noMatch},
	}
	// A pin on the root: as above, but a new intermediate under the same
	// root still leads to it.
	root := map[string]want{}
	for k, v := range issuer {
		root[k] = v
	}
	root[compare.IntermediateRotated] = want{A, "matched"}
	// A pin on a root the server does not send matches nothing, except in
	// the forged chain, which carries it and fails the signature check.
	unsent := map[string]want{}
	for k, v := range issuer {
		if k != compare.ForgedChain {
			v = want{R, noMatch}
		}
		unsent[k] = v
	}
	tests := []struct {
		name   string
		ref    *compare.Reference
		labels []string
		want   map[string]want
	}{
		{"issuer", gen, []string{"spkipin:chain=ca", "sha256pin:chain=ca", "md5pin:chain=ca", "allowlist:chain=ca", "spkipin:chain=any"}, issuer},
		{"issuer, root sent", gen.SendingRoot(), []string{"spkipin:chain=ca", "allowlist:chain=any"}, issuer},
		{"root sent", gen.SendingRoot(), []string{"spkipin:chain=ca,ca=root", "sha256pin:chain=ca,ca=root", "allowlist:chain=ca,ca=root", "spkipin:chain=any,ca=root"}, root},
		{"root not sent", gen, []string{"spkipin:chain=ca,ca=root"}, unsent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := runInProcess(t, tt.ref, tt.labels...)
			if len(rep.Scenarios) != len(tt.want) {
				t.Fatalf("%d scenarios, want %d", len(rep.Scenarios), len(tt.want))
			}
			for i, label := range tt.labels {
				if rep.Verifiers[i].Name != label {
					t.Errorf("column %d is %q, want %q", i, rep.Verifiers[i].Name, label)
				}
				for _, s := range rep.Scenarios {
					x, ran := rep.Find(label, s.Name)
					w := tt.want[s.Name]
					why := strings.Contains(x.Reason, w.why) || w.why == noMatch && strings.Contains(x.Reason, whyElse)
					if !ran || x.Failed || x.Accepted != w.accept || !why {
						t.Errorf("%s × %s: %+v (ran %v); want accepted %v saying %q", label, s.Name, x, ran, w.accept, w.why)
					}
				}
			}
		})
	}
}

// TestCAPinColumns: a CA pin has a column of its own beside the leaf pin
// of the same verifier; one label twice is refused.
func TestCAPinColumns(t *testing.T) {
	ref, err := compare.NewReference(certs.ECDSA)
	if err != nil {
		t.Fatal(err)
	}
	rep := runInProcess(t, ref, "spkipin", "spkipin:chain=ca", "spkipin:chain=ca,ca=root")
	if len(rep.Verifiers) != 3 {
		t.Fatalf("%d columns, want 3", len(rep.Verifiers))
	}
	leaf, _ := rep.Accepted("spkipin", compare.Rekeyed)
	ca, _ := rep.Accepted("spkipin:chain=ca", compare.Rekeyed)
	if leaf || !ca {
		t.Errorf("rekeyed: leaf pin accepted %v, CA pin %v; want false, true", leaf, ca)
	}
	_, err = compare.Run(t.Context(), compare.Config{Reference: ref, Verifiers: []string{"spkipin:chain=ca", "spkipin:chain=ca"}, Dir: t.TempDir(),
		InProcess: func(string) (verify.Verifier, error) { return nil, errors.New("unused") },
		Start: func(context.Context, string, verify.Options) (compare.Plugin, error) {
			return nil, errors.New("unused")
		}})
	if !errors.Is(err, compare.ErrDuplicateVerifier) || !strings.Contains(err.Error(), `"spkipin:chain=ca"`) {
		t.Errorf("a label twice: err = %v", err)
	}
	_, err = compare.Run(t.Context(), compare.Config{Reference: ref, Verifiers: []string{"spkipin:chain=ca,pin=x"}, Dir: t.TempDir(),
		InProcess: func(string) (verify.Verifier, error) { return nil, errors.New("unused") },
		Start: func(context.Context, string, verify.Options) (compare.Plugin, error) {
			return nil, errors.New("unused")
		}})
	if !errors.Is(err, compare.ErrUnknownStrategy) || !strings.Contains(err.Error(), `"spkipin:chain=ca,pin=x"`) {
		t.Errorf("a label that is not one: err = %v", err)
	}
}
