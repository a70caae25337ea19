package sdktest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/core/sdk"
	"github.com/tlspin/tlspin/core/sdk/sdktest"
	"github.com/tlspin/tlspin/core/verify"
)

// spkiPin allows a leaf whose SubjectPublicKeyInfo has the configured
// SHA-256; a minimal verifier to drive the harness.
type spkiPin struct{ pin [sha256.Size]byte }

func (*spkiPin) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{Name: "spkitest", Version: "1", Options: []verify.Option{{Name: "pin", Required: true}}}, nil
}

func (p *spkiPin) Configure(ctx context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	d, _ := p.Describe(ctx)
	if err := verify.CheckOptions(d, req.Options); err != nil {
		return nil, err
	}
	v := req.Options["pin"][0]
	if b, err := hex.DecodeString(v); err != nil || copy(p.pin[:], b) != sha256.Size {
		return nil, &verify.OptionError{Option: "pin", Value: v, Err: errors.New("want 64 hex digits")}
	}
	return &verify.ConfigureResponse{}, nil
}

func (p *spkiPin) Verify(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
	c, err := sdk.Leaf(req)
	if err != nil {
		return nil, err
	}
	got := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	if got != p.pin {
		return &verify.Verdict{Reason: fmt.Sprintf("spki sha256 %x is not pinned", got)}, nil
	}
	return &verify.Verdict{Allow: true, Matched: "pin"}, nil
}

func spki(c *sdktest.Cert) string {
	s := sha256.Sum256(c.Cert.RawSubjectPublicKeyInfo)
	return fmt.Sprintf("%x", s)
}

func TestCheckThroughGRPC(t *testing.T) {
	orig := sdktest.SelfSigned(t, certs.Template{CommonName: "a", SANs: []string{"a.example"}})
	c := sdktest.Start(t, &spkiPin{}, verify.Options{"pin": {spki(orig)}})
	tests := []struct {
		name  string
		cert  *sdktest.Cert
		allow bool
	}{
		{"original", orig, true},
		{"renewed, same key", orig.Renewed(t, 30), true},
		{"rekeyed", orig.Rekeyed(t), false},
		{"stranger", sdktest.SelfSigned(t, certs.Template{CommonName: "b"}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := c.Check(t, tc.cert)
			if v.Allow != tc.allow {
				t.Fatalf("allow = %v, want %v (reason %q)", v.Allow, tc.allow, v.Reason)
			}
			if !tc.allow && !strings.Contains(v.Reason, spki(tc.cert)) {
				t.Errorf("reason %q does not show the received spki", v.Reason)
			}
		})
	}
}

func TestCertHelpers(t *testing.T) {
	orig := sdktest.SelfSigned(t, certs.Template{CommonName: "a", SANs: []string{"a.example"}, Days: 90})
	ren := orig.Renewed(t, 10)
	rek := orig.Rekeyed(t)
	if !bytes.Equal(ren.Cert.RawSubjectPublicKeyInfo, orig.Cert.RawSubjectPublicKeyInfo) {
		t.Error("renewed certificate has a new key")
	}
	if bytes.Equal(ren.Cert.Raw, orig.Cert.Raw) || ren.Cert.NotAfter.After(orig.Cert.NotAfter) {
		t.Errorf("renewed certificate: not after %s, original %s; want a new, shorter one", ren.Cert.NotAfter, orig.Cert.NotAfter)
	}
	if bytes.Equal(rek.Cert.RawSubjectPublicKeyInfo, orig.Cert.RawSubjectPublicKeyInfo) {
		t.Error("rekeyed certificate kept the key")
	}
	if rek.Cert.DNSNames[0] != "a.example" {
		t.Errorf("rekeyed certificate names %v, want the original's", rek.Cert.DNSNames)
	}
	ca := sdktest.SelfSigned(t, certs.Template{CommonName: "ca", IsCA: true})
	leaf := ca.Issued(t, certs.Template{CommonName: "leaf", SANs: []string{"leaf.example"}})
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "leaf.example"}); err != nil {
		t.Errorf("issued certificate does not chain to its CA: %v", err)
	}
	req := sdktest.Request(leaf, ca)
	if len(req.PeerChain) != 2 || req.ServerName != "leaf.example" || req.Side != verify.ClientVerifiesServer {
		t.Errorf("Request = %+v", req)
	}
}

func TestErrorsCrossTheWire(t *testing.T) {
	tests := []struct {
		name   string
		opts   verify.Options
		badOpt bool
		quoted string
	}{
		{"missing required", verify.Options{}, true, `"pin"`},
		{"bad value", verify.Options{"pin": {"zz"}}, true, `"zz"`},
		{"unknown option", verify.Options{"pin": {strings.Repeat("0", 64)}, "color": {"red"}}, true, `"color"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := sdktest.Serve(t, &spkiPin{})
			_, err := c.Configure(context.Background(), &verify.ConfigureRequest{Options: tc.opts})
			if errors.Is(err, verify.ErrBadOption) != tc.badOpt || !strings.Contains(fmt.Sprint(err), tc.quoted) {
				t.Fatalf("Configure: %v; want a bad-option error quoting %s", err, tc.quoted)
			}
		})
	}
	c := sdktest.Start(t, &spkiPin{}, verify.Options{"pin": {strings.Repeat("0", 64)}})
	_, err := c.CheckRequest(&verify.Request{Side: verify.ClientVerifiesServer})
	var remote *rpc.RemoteError
	if !errors.As(err, &remote) || !strings.Contains(err.Error(), "no certificate") {
		t.Fatalf("Verify without a certificate: %v; want the verifier's own error", err)
	}
}
