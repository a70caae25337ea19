package pinverifier_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/verifiers/internal/vtest"
	"github.com/tlspin/tlspin/verifiers/pinverifier"
	"github.com/tlspin/tlspin/verifiers/sha256pin"
	"github.com/tlspin/tlspin/verifiers/spkipin"
)

// TestMismatchMessage: a rejection quotes the expected pin the way the user
// wrote it, shows what was received in that format, and points out a pin
// that is the certificate's digest under another algorithm.
func TestMismatchMessage(t *testing.T) {
	c := vtest.New(t, vtest.Spec{CN: "peer"})
	other := vtest.New(t, vtest.Spec{CN: "other"})
	tests := []struct {
		name  string
		v     *pinverifier.Verifier
		opts  verify.Options
		has   []string
		hasnt []string
	}{
		{"curl pin stays curl", spkipin.New(nil), verify.Options{"pin": {other.Pin(t, pin.SPKI, pin.FormatCurl)}},
			[]string{"expected " + other.Pin(t, pin.SPKI, pin.FormatCurl), "has spki " + c.Pin(t, pin.SPKI, pin.FormatCurl)}, []string{"note:"}},
		{"okhttp pin stays okhttp", spkipin.New(nil), verify.Options{"pin": {other.Pin(t, pin.SPKI, pin.FormatOkHttp)}},
			[]string{"expected " + other.Pin(t, pin.SPKI, pin.FormatOkHttp)}, nil},
		{"colon pin stays colon", sha256pin.New(nil), verify.Options{"pin": {other.Pin(t, pin.SHA256, pin.FormatColon)}},
			[]string{"expected " + other.Pin(t, pin.SHA256, pin.FormatColon), "has sha256 " + c.Pin(t, pin.SHA256, pin.FormatColon)}, nil},
		{"openssl line names its algorithm once", sha256pin.New(nil), verify.Options{"pin": {other.Pin(t, pin.SHA256, pin.FormatOpenSSL)}},
			[]string{"has " + c.Pin(t, pin.SHA256, pin.FormatOpenSSL)}, []string{"sha256 sha256"}},
		{"openssl line names its algorithm once, chain=any", sha256pin.New(nil), verify.Options{"pin": {other.Pin(t, pin.SHA256, pin.FormatOpenSSL)}, "chain": {"any"}},
			[]string{"it has #0"}, []string{"sha256 sha256", "has sha256 #0"}},
		{"backup pins each in their own format", spkipin.New(nil), verify.Options{"pin": {other.Pin(t, pin.SPKI, pin.FormatCurl), other.Pin(t, pin.SPKI, pin.FormatHPKP)}},
			[]string{"expected " + other.Pin(t, pin.SPKI, pin.FormatCurl) + " or " + other.Pin(t, pin.SPKI, pin.FormatHPKP)}, nil},
		{"sha256 fingerprint given to spkipin", spkipin.New(nil), verify.Options{"pin": {c.Pin(t, pin.SHA256, pin.FormatHex)}},
			[]string{"note: the pin " + c.Pin(t, pin.SHA256, pin.FormatHex) + " is this certificate's sha256 digest, not its spki pin", "sha256pin verifier"}, nil},
		{"spki pin given to sha256pin", sha256pin.New(nil), verify.Options{"pin": {c.Pin(t, pin.SPKI, pin.FormatBase64)}},
			[]string{"is this certificate's spki digest, not its sha256 pin", "spkipin verifier"}, nil},
		{"sha256 fingerprint given to spkipin, chain=any", spkipin.New(nil), verify.Options{"pin": {c.Pin(t, pin.SHA256, pin.FormatHex)}, "chain": {"any"}},
			[]string{"is this certificate's sha256 digest"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.v.Configure(context.Background(), &verify.ConfigureRequest{Options: tc.opts}); err != nil {
				t.Fatal(err)
			}
			verdict := vtest.Verify(t, tc.v, &verify.Request{PeerChain: vtest.Chain(c), Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:1"})
			if verdict.Allow {
				t.Fatal("accepted")
			}
			for _, s := range tc.has {
				if !strings.Contains(verdict.Reason, s) {
					t.Errorf("reason lacks %q:\n%s", s, verdict.Reason)
				}
			}
			for _, s := range tc.hasnt {
				if strings.Contains(verdict.Reason, s) {
					t.Errorf("reason has %q:\n%s", s, verdict.Reason)
				}
			}
		})
	}
}
