package builtin_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/verifiers"
	"github.com/tlspin/tlspin/verifiers/builtin"
	"github.com/tlspin/tlspin/verifiers/internal/vtest"
)

func TestMain(m *testing.M) { testbin.Main(m) }

var all = []string{"allowlist", "ca", "md5pin", "sha256pin", "spkipin", "tofu"}

func TestRegistry(t *testing.T) {
	r := builtin.New(nil)
	if got := strings.Join(r.Names(), ","); got != strings.Join(all, ",") {
		t.Fatalf("Names() = %s, want %s", got, strings.Join(all, ","))
	}
	for _, n := range all {
		v, err := r.Lookup(n)
		if err != nil {
			t.Fatal(err)
		}
		d, err := v.Describe(context.Background())
		if err != nil || d.Name != n || d.Summary == "" || d.Version == "" || len(d.Options) == 0 {
			t.Errorf("%s: Describe = %+v, %v; want its name, version, summary and options", n, d, err)
		}
		for _, o := range d.Options {
			if o.Description == "" {
				t.Errorf("%s: option %s has no description", n, o.Name)
			}
		}
	}
	if _, err := r.Lookup("nope"); !errors.Is(err, verifiers.ErrUnknown) {
		t.Errorf("Lookup(nope) = %v, want ErrUnknown", err)
	}
}

// TestBadOptionsThroughPlugin checks, through real plugin processes, that
// each verifier rejects bad options at Configure time with an error that
// names the option and quotes the value.
func TestBadOptionsThroughPlugin(t *testing.T) {
	dir := t.TempDir()
	badList := filepath.Join(dir, "bad.txt")
	vtest.WriteFile(t, badList, []byte("# pins\nspki:AAAA\n"))
	// A file that says whom to trust, which every user may write.
	open := filepath.Join(dir, "open.txt")
	vtest.WriteFile(t, open, []byte("# pins\n"))
	if err := os.Chmod(open, 0o666); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		verifier string
		opts     verify.Options
		want     []string
	}{
		{"md5pin", verify.Options{"pin": {"nothex"}}, []string{"pin", `"nothex"`}},
		{"md5pin", verify.Options{}, []string{`"pin"`, "requires"}},
		{"sha256pin", verify.Options{"pin": {"sha256//AAAA"}}, []string{"pin", `"sha256//AAAA"`, "spki pin"}},
		{"sha256pin", verify.Options{"pin": {strings.Repeat("ab", 32)}, "chain": {"root"}}, []string{"chain", `"root"`, "leaf, any or ca"}},
		{"spkipin", verify.Options{"pin": {"sha256//AAAA"}}, []string{"pin", `"sha256//AAAA"`, "3 bytes"}},
		{"spkipin", verify.Options{"pin": {strings.Repeat("ab", 32)}, "expires": {"next year"}}, []string{"expires", `"next year"`, "YYYY-MM-DD"}},
		{"spkipin", verify.Options{"pin": {strings.Repeat("ab", 32)}, "colour": {"red"}}, []string{`"colour"`, "does not take"}},
		{"allowlist", verify.Options{}, []string{`"file"`, "requires"}},
		{"allowlist", verify.Options{"file": {filepath.Join(dir, "missing.txt")}}, []string{"file", "missing.txt", "no such file"}},
		{"allowlist", verify.Options{"file": {badList}}, []string{"file", badList + ":2:", "bad spki pin"}},
		{"allowlist", verify.Options{"file": {badList}, "chain": {"all"}}, []string{"chain", `"all"`}},
		{"tofu", verify.Options{"mode": {"yolo"}}, []string{"mode", `"yolo"`, "accept-new or strict"}},
		{"tofu", verify.Options{"mode": {"strict"}, "file": {filepath.Join(dir, "none")}}, []string{"file", "none", "does not exist"}},
		{"tofu", verify.Options{"file": {badList}}, []string{"file", badList + ":2:"}},
		{"tofu", verify.Options{"file": {dir}}, []string{"file", "is a directory"}},
		{"ca", verify.Options{"ca-file": {filepath.Join(dir, "nope.pem")}}, []string{"ca-file", "nope.pem"}},
		{"ca", verify.Options{"ca-file": {badList}}, []string{"ca-file", "bad.txt", "no certificate"}},
		{"ca", verify.Options{"server-name": {"a b"}}, []string{"server-name", `"a b"`}},
		{"allowlist", verify.Options{"file": {open}}, []string{"file", "may be written by every user"}},
		{"tofu", verify.Options{"file": {open}}, []string{"file", "may be written by every user"}},
		{"ca", verify.Options{"ca-file": {open}}, []string{"ca-file", "may be written by every user"}},
	}
	for _, tt := range tests {
		t.Run(tt.verifier+"/"+strings.Join(tt.want[:1], ""), func(t *testing.T) {
			_, _, err := vtest.TryStart(t, tt.verifier, tt.opts)
			if err == nil {
				t.Fatalf("%s with %v started; want a bad-option error", tt.verifier, tt.opts)
			}
			if !errors.Is(err, verify.ErrBadOption) {
				t.Errorf("err = %v, want it to wrap verify.ErrBadOption", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestPinRotationThroughPlugin runs the rotation scenarios against md5pin,
// sha256pin and spkipin, each a separate process.
func TestPinRotationThroughPlugin(t *testing.T) {
	ca := vtest.New(t, vtest.Spec{CN: "Test CA", IsCA: true})
	orig := vtest.New(t, vtest.Spec{CN: "server", SANs: []string{"localhost"}})
	renewed := orig.Renew(t, nil)
	newKey := vtest.New(t, vtest.Spec{CN: "server", SANs: []string{"localhost"}})
	issued := vtest.New(t, vtest.Spec{CN: "server", SANs: []string{"localhost"}, Issuer: ca})
	reissued := issued.Renew(t, ca) // same key, same CA
	otherCA := vtest.New(t, vtest.Spec{CN: "Other CA", IsCA: true})
	otherIssued := vtest.New(t, vtest.Spec{CN: "server", Issuer: otherCA})
	attacker := vtest.New(t, vtest.Spec{CN: "server", SANs: []string{"localhost"}})
	const forged = "chain does not lead from the leaf to the pinned certificate"

	algos := map[string]pin.Algo{"md5pin": pin.MD5, "sha256pin": pin.SHA256, "spkipin": pin.SPKI}
	type want map[string]bool
	allAllow := want{"md5pin": true, "sha256pin": true, "spkipin": true}
	noneAllow := want{}
	tests := []struct {
		name    string
		pins    []*vtest.Cert
		extra   verify.Options
		present [][]byte
		want    want
		reason  string // in every rejection
	}{
		{"same certificate", []*vtest.Cert{orig}, nil, vtest.Chain(orig), allAllow, ""},
		{"renewed with the same key", []*vtest.Cert{orig}, nil, vtest.Chain(renewed), want{"spkipin": true}, "mismatch"},
		{"new key", []*vtest.Cert{orig}, nil, vtest.Chain(newKey), noneAllow, "mismatch"},
		{"backup pin for the new key", []*vtest.Cert{orig, newKey}, nil, vtest.Chain(newKey), allAllow, ""},
		{"expired pin set", []*vtest.Cert{orig}, verify.Options{"expires": {"2001-02-03"}}, vtest.Chain(orig), noneAllow, "expired on 2001-02-03"},
		{"pin set valid until far away", []*vtest.Cert{orig}, verify.Options{"expires": {"2999-12-31"}}, vtest.Chain(orig), allAllow, ""},
		{"chain=ca, CA pinned", []*vtest.Cert{ca}, verify.Options{"chain": {"ca"}}, vtest.Chain(issued, ca), allAllow, ""},
		{"chain=ca, leaf reissued by the pinned CA", []*vtest.Cert{ca}, verify.Options{"chain": {"ca"}}, vtest.Chain(reissued, ca), allAllow, ""},
		{"chain=ca, leaf pinned does not count", []*vtest.Cert{issued}, verify.Options{"chain": {"ca"}}, vtest.Chain(issued, ca), noneAllow, "chain=ca"},
		{"chain=ca, other CA", []*vtest.Cert{ca}, verify.Options{"chain": {"ca"}}, vtest.Chain(otherIssued, otherCA), noneAllow, "Other CA"},
		{"chain=ca, leaf only sent", []*vtest.Cert{ca}, verify.Options{"chain": {"ca"}}, vtest.Chain(issued), noneAllow, "only its leaf"},
		{"chain=any, CA pinned", []*vtest.Cert{ca}, verify.Options{"chain": {"any"}}, vtest.Chain(issued, ca), allAllow, ""},
		{"chain=any, leaf pinned", []*vtest.Cert{issued}, verify.Options{"chain": {"any"}}, vtest.Chain(issued, ca), allAllow, ""},
		{"chain=leaf, CA pinned", []*vtest.Cert{ca}, nil, vtest.Chain(issued, ca), noneAllow, "leaf certificate"},
		{"chain=ca, forged: attacker's leaf carries the pinned CA", []*vtest.Cert{ca}, verify.Options{"chain": {"ca"}}, vtest.Chain(attacker, ca), noneAllow, forged},
		{"chain=any, forged: attacker's leaf carries the pinned CA", []*vtest.Cert{ca}, verify.Options{"chain": {"any"}}, vtest.Chain(attacker, ca), noneAllow, forged},
		{"chain=any, forged: attacker's leaf carries the pinned leaf", []*vtest.Cert{issued}, verify.Options{"chain": {"any"}}, vtest.Chain(attacker, issued, ca), noneAllow, forged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, name := range []string{"md5pin", "sha256pin", "spkipin"} {
				opts := verify.Options{}
				for k, v := range tt.extra {
					opts[k] = v
				}
				for _, c := range tt.pins {
					opts["pin"] = append(opts["pin"], c.Pin(t, algos[name], pin.FormatHex))
				}
				p, _ := vtest.Start(t, name, opts)
				v := vtest.Verify(t, p, &verify.Request{PeerChain: tt.present, ServerName: "localhost", RemoteAddr: "127.0.0.1:8443"})
				if v.Allow != tt.want[name] {
					t.Errorf("%s: allow = %v, want %v (reason %q)", name, v.Allow, tt.want[name], v.Reason)
				}
				if v.Allow && v.Matched == "" {
					t.Errorf("%s: allowed without saying what matched", name)
				}
				if !v.Allow && !strings.Contains(v.Reason, tt.reason) {
					t.Errorf("%s: reason %q, want it to mention %q", name, v.Reason, tt.reason)
				}
				p.Close()
			}
		})
	}
}

// TestMismatchShowsFingerprintInPinFormat checks that a rejection shows
// what was received in the format the pin was written in, and how to trust it.
func TestMismatchShowsFingerprintInPinFormat(t *testing.T) {
	orig := vtest.New(t, vtest.Spec{CN: "server"})
	other := vtest.New(t, vtest.Spec{CN: "intruder"})
	tests := []struct {
		verifier string
		algo     pin.Algo
		format   pin.Format
	}{
		{"spkipin", pin.SPKI, pin.FormatCurl},
		{"spkipin", pin.SPKI, pin.FormatHPKP},
		{"spkipin", pin.SPKI, pin.FormatOkHttp},
		{"sha256pin", pin.SHA256, pin.FormatColon},
		{"sha256pin", pin.SHA256, pin.FormatOpenSSL},
		{"md5pin", pin.MD5, pin.FormatHex},
	}
	for _, tt := range tests {
		t.Run(tt.verifier+"/"+string(tt.format), func(t *testing.T) {
			p, _ := vtest.Start(t, tt.verifier, verify.Options{"pin": {orig.Pin(t, tt.algo, tt.format)}})
			v := vtest.Verify(t, p, &verify.Request{PeerChain: vtest.Chain(other), RemoteAddr: "127.0.0.1:8443"})
			if v.Allow {
				t.Fatal("allowed an unpinned certificate")
			}
			want := other.Pin(t, tt.algo, tt.format)
			for _, s := range []string{want, `"CN=intruder"`, "tlspin send --verifier " + tt.verifier, "127.0.0.1:8443"} {
				if !strings.Contains(v.Reason, s) {
					t.Errorf("reason %q does not contain %q", v.Reason, s)
				}
			}
		})
	}
}

// TestSPKIPinEveryFormatThroughPlugin configures spkipin with the pin in
// each format users paste and checks the right key is accepted.
func TestSPKIPinEveryFormatThroughPlugin(t *testing.T) {
	c := vtest.New(t, vtest.Spec{CN: "server"})
	other := vtest.New(t, vtest.Spec{CN: "other"})
	b64 := c.Pin(t, pin.SPKI, pin.FormatBase64)
	values := map[string]string{
		"hex":        c.Pin(t, pin.SPKI, pin.FormatHex),
		"colon":      c.Pin(t, pin.SPKI, pin.FormatColon),
		"base64":     b64,
		"curl":       c.Pin(t, pin.SPKI, pin.FormatCurl),
		"curl list":  other.Pin(t, pin.SPKI, pin.FormatCurl) + ";" + c.Pin(t, pin.SPKI, pin.FormatCurl),
		"okhttp":     c.Pin(t, pin.SPKI, pin.FormatOkHttp),
		"hpkp":       c.Pin(t, pin.SPKI, pin.FormatHPKP),
		"ghostunnel": "sha256:" + b64,
	}
	for name, val := range values {
		t.Run(name, func(t *testing.T) {
			p, _ := vtest.Start(t, "spkipin", verify.Options{"pin": {val}})
			if v := vtest.Verify(t, p, &verify.Request{PeerChain: vtest.Chain(c)}); !v.Allow {
				t.Errorf("pin %q rejected its own key: %s", val, v.Reason)
			}
			if name != "curl list" {
				if v := vtest.Verify(t, p, &verify.Request{PeerChain: vtest.Chain(other)}); v.Allow {
					t.Errorf("pin %q accepted another key", val)
				}
			}
		})
	}
}
