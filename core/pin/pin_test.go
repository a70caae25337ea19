package pin_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/pin"
)

func newCert(t testing.TB, kt certs.KeyType) *x509.Certificate {
	t.Helper()
	_, c, err := certs.SelfSigned(certs.Template{Type: kt, CommonName: "pin-test", SANs: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// digests computes every algorithm's digest independently of package pin.
func digests(c *x509.Certificate) map[pin.Algo][]byte {
	m := md5.Sum(c.Raw)
	s1 := sha1.Sum(c.Raw)
	s256 := sha256.Sum256(c.Raw)
	spki := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return map[pin.Algo][]byte{pin.MD5: m[:], pin.SHA1: s1[:], pin.SHA256: s256[:], pin.SPKI: spki[:]}
}

func colon(d []byte) string {
	h := strings.ToUpper(hex.EncodeToString(d))
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func TestSum(t *testing.T) {
	for _, kt := range []certs.KeyType{certs.RSA, certs.ECDSA, certs.Ed25519} {
		c := newCert(t, kt)
		want := digests(c)
		for _, a := range pin.Algos {
			got, err := pin.Sum(a, c.Raw)
			if err != nil {
				t.Fatalf("%s %s: %v", kt, a, err)
			}
			if !bytes.Equal(got, want[a]) || len(got) != a.Size() {
				t.Errorf("%s %s: Sum = %x, want %x", kt, a, got, want[a])
			}
		}
	}
	if _, err := pin.Sum(pin.SPKI, []byte("not a certificate")); err == nil {
		t.Error("Sum(spki) of garbage: no error")
	}
	if _, err := pin.Sum("sha512", nil); !errors.Is(err, pin.ErrUnknownAlgo) {
		t.Errorf("Sum(sha512) err = %v, want ErrUnknownAlgo", err)
	}
}

// TestParseEveryFormat parses each algorithm's digest written in every
// way a user may paste it.
func TestParseEveryFormat(t *testing.T) {
	c := newCert(t, certs.ECDSA)
	d := digests(c)
	type tc struct {
		name string
		algo pin.Algo
		in   string
	}
	var tests []tc
	for _, a := range pin.Algos {
		h := hex.EncodeToString(d[a])
		b64 := base64.StdEncoding.EncodeToString(d[a])
		tests = append(tests,
			tc{"hex lower", a, h},
			tc{"hex upper", a, strings.ToUpper(h)},
			tc{"colon upper", a, colon(d[a])},
			tc{"colon lower", a, strings.ToLower(colon(d[a]))},
			tc{"hex with spaces", a, strings.ReplaceAll(colon(d[a]), ":", " ")},
			tc{"surrounding space", a, "  " + h + "\n"},
			tc{"base64", a, b64},
			tc{"base64 raw", a, base64.RawStdEncoding.EncodeToString(d[a])},
			tc{"base64 url", a, base64.URLEncoding.EncodeToString(d[a])},
			tc{"base64 raw url", a, base64.RawURLEncoding.EncodeToString(d[a])},
			tc{"algo prefix hex", a, string(a) + ":" + h},
			tc{"algo prefix colon", a, strings.ToUpper(string(a)) + ":" + colon(d[a])},
		)
		if a != pin.SPKI {
			tests = append(tests,
				tc{"openssl 3", a, string(a) + " Fingerprint=" + colon(d[a])},
				tc{"openssl 1.1", a, strings.ToUpper(string(a)) + " Fingerprint=" + colon(d[a])},
			)
		}
	}
	b64 := base64.StdEncoding.EncodeToString(d[pin.SPKI])
	tests = append(tests,
		tc{"curl", pin.SPKI, "sha256//" + b64},
		tc{"okhttp", pin.SPKI, "sha256/" + b64},
		tc{"hpkp", pin.SPKI, `pin-sha256="` + b64 + `"`},
		tc{"hpkp single quotes", pin.SPKI, `pin-sha256='` + b64 + `'`},
		tc{"hpkp unquoted", pin.SPKI, `pin-sha256=` + b64},
		tc{"ghostunnel", pin.SPKI, "sha256:" + b64},
		tc{"spki-sha256 prefix", pin.SPKI, "spki-sha256:" + b64},
	)
	for _, tt := range tests {
		t.Run(string(tt.algo)+"/"+tt.name, func(t *testing.T) {
			p, err := pin.Parse(tt.algo, tt.in)
			if err != nil {
				t.Fatalf("Parse(%s, %q): %v", tt.algo, tt.in, err)
			}
			if p.Algo != tt.algo || !bytes.Equal(p.Digest, d[tt.algo]) {
				t.Fatalf("Parse(%s, %q) = %s %x, want %x", tt.algo, tt.in, p.Algo, p.Digest, d[tt.algo])
			}
			if !p.Equal(d[tt.algo]) {
				t.Error("Equal(own digest) = false")
			}
		})
	}
}

func TestParseListSeveral(t *testing.T) {
	a, b := newCert(t, certs.ECDSA), newCert(t, certs.Ed25519)
	pa := base64.StdEncoding.EncodeToString(digests(a)[pin.SPKI])
	pb := base64.StdEncoding.EncodeToString(digests(b)[pin.SPKI])
	tests := []struct {
		name string
		in   string
	}{
		{"curl pair", "sha256//" + pa + ";sha256//" + pb},
		{"curl pair with space and trailing ;", "sha256//" + pa + "; sha256//" + pb + ";"},
		{"hpkp header value", `pin-sha256="` + pa + `"; pin-sha256="` + pb + `"; max-age=5184000; includeSubDomains; report-uri="https://example.invalid/r"`},
		{"hpkp whole header", `Public-Key-Pins: pin-sha256="` + pa + `"; pin-sha256="` + pb + `"; max-age=10`},
		{"mixed formats", "sha256/" + pa + ";" + hex.EncodeToString(digests(b)[pin.SPKI])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := pin.ParseList(pin.SPKI, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != 2 || !ps[0].Equal(digests(a)[pin.SPKI]) || !ps[1].Equal(digests(b)[pin.SPKI]) {
				t.Fatalf("ParseList(%q) = %v, want the two pins in order", tt.in, ps)
			}
		})
	}
	if _, err := pin.Parse(pin.SPKI, "sha256//"+pa+";sha256//"+pb); err == nil {
		t.Error("Parse of two pins: no error")
	}
}

func TestParseRejects(t *testing.T) {
	c := newCert(t, certs.RSA)
	d := digests(c)
	b64spki := base64.StdEncoding.EncodeToString(d[pin.SPKI])
	tests := []struct {
		name    string
		algo    pin.Algo
		in      string
		errWant string
	}{
		{"empty", pin.MD5, "", "empty"},
		{"only separators", pin.SPKI, " ; ; ", "no pin"},
		{"not hex nor base64", pin.MD5, "nothex", "hex digits or base64"},
		{"md5 too short", pin.MD5, hex.EncodeToString(d[pin.MD5])[:30], "hex digits"},
		// Hex cut short where raw base64 of the digest's size has as
		// many characters: read as base64, it was a pin no peer has.
		{"md5 hex cut to 22 digits", pin.MD5, hex.EncodeToString(d[pin.MD5])[:22], "want 32 hex digits for md5, got 22"},
		{"sha256 hex cut to 43 digits", pin.SHA256, hex.EncodeToString(d[pin.SHA256])[:43], "want 64 hex digits for sha256, got 43"},
		{"spki hex cut to 43 digits", pin.SPKI, hex.EncodeToString(d[pin.SPKI])[:43], "want 64 hex digits for spki, got 43"},
		{"sha1 hex cut to 27 digits", pin.SHA1, hex.EncodeToString(d[pin.SHA1])[:27], "want 40 hex digits for sha1, got 27"},
		{"allowlist-style md5 hex cut", pin.MD5, "md5:" + hex.EncodeToString(d[pin.MD5])[:22], "got 22"},
		{"md5 given a sha256", pin.MD5, hex.EncodeToString(d[pin.SHA256]), "that is the length of a sha256 digest, which is for sha256pin"},
		{"colon hex wrong length", pin.SHA256, colon(d[pin.MD5]), "want 64 hex digits"},
		{"sha256 given an md5", pin.SHA256, colon(d[pin.MD5]), "that is the length of a md5 digest, which is for md5pin"},
		{"sha256 pin given curl", pin.SHA256, "sha256//" + b64spki, "spki pin, not sha256"},
		{"md5 given okhttp", pin.MD5, "sha256/" + b64spki, "spki pin, not md5"},
		{"sha256 given hpkp", pin.SHA256, `pin-sha256="` + b64spki + `"`, "spki pin, not sha256"},
		{"okhttp sha1", pin.SPKI, "sha1/" + base64.StdEncoding.EncodeToString(d[pin.SHA1]), "SPKI SHA-1"},
		{"curl wrong size", pin.SPKI, "sha256//" + base64.StdEncoding.EncodeToString(d[pin.MD5]), "decodes to 16 bytes"},
		{"curl not base64", pin.SPKI, "sha256//!!!", "not base64"},
		{"openssl algo mismatch", pin.SHA256, "md5 Fingerprint=" + colon(d[pin.MD5]), "not a sha256 pin"},
		{"openssl for spki", pin.SPKI, "sha256 Fingerprint=" + colon(d[pin.SHA256]), "not a spki pin"},
		{"openssl unknown algo", pin.SHA256, "sha512 Fingerprint=AA", "unknown algorithm"},
		{"prefix mismatch", pin.SHA1, "md5:" + hex.EncodeToString(d[pin.MD5]), "a md5 pin where a sha1 pin"},
		{"second of two bad", pin.SPKI, "sha256//" + b64spki + ";sha256//AAAA", "decodes to 3 bytes"},
		{"unknown algo", "sha512", "AA", "unknown algorithm"},
		// Non-ASCII letters change length under strings.ToLower; the
		// parser must neither panic nor misread them.
		{"dotted capital I", pin.MD5, "İİİİ Fingerprint=" + colon(d[pin.MD5]), "unknown algorithm"},
		{"expanding lowercase", pin.MD5, strings.Repeat("Ⱥ", 20) + " Fingerprint=", "unknown algorithm"},
		{"kelvin sign", pin.SPKI, "\u212a" + "pin-sha256=" + b64spki, "base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := pin.Parse(tt.algo, tt.in)
			if err == nil {
				t.Fatalf("Parse(%s, %q) = %v, want an error", tt.algo, tt.in, p)
			}
			if !strings.Contains(err.Error(), tt.errWant) {
				t.Errorf("err = %q, want it to mention %q", err, tt.errWant)
			}
			if tt.algo.Size() != 0 && !errors.Is(err, pin.ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestParseAlgo(t *testing.T) {
	tests := []struct {
		in   string
		want pin.Algo
	}{
		{"md5", pin.MD5}, {"MD5", pin.MD5}, {"sha1", pin.SHA1}, {"SHA-1", pin.SHA1},
		{"sha256", pin.SHA256}, {" Sha-256 ", pin.SHA256}, {"spki", pin.SPKI}, {"SPKI-SHA256", pin.SPKI},
	}
	for _, tt := range tests {
		if got, err := pin.ParseAlgo(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseAlgo(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := pin.ParseAlgo("sha512"); !errors.Is(err, pin.ErrUnknownAlgo) || !strings.Contains(err.Error(), `"sha512"`) {
		t.Errorf("ParseAlgo(sha512) err = %v, want ErrUnknownAlgo quoting the value", err)
	}
}

func TestPrint(t *testing.T) {
	d := bytes.Repeat([]byte{0xab, 0x01}, 16) // 32 bytes
	b64 := base64.StdEncoding.EncodeToString(d)
	tests := []struct {
		algo pin.Algo
		f    pin.Format
		want string
		err  bool
	}{
		{pin.SPKI, pin.FormatHex, hex.EncodeToString(d), false},
		{pin.SPKI, pin.FormatColon, colon(d), false},
		{pin.SPKI, pin.FormatBase64, b64, false},
		{pin.SPKI, pin.FormatCurl, "sha256//" + b64, false},
		{pin.SPKI, pin.FormatOkHttp, "sha256/" + b64, false},
		{pin.SPKI, pin.FormatHPKP, `pin-sha256="` + b64 + `"`, false},
		{pin.SPKI, pin.FormatOpenSSL, "", true},
		{pin.SHA256, pin.FormatOpenSSL, "sha256 Fingerprint=" + colon(d), false},
		{pin.SHA256, pin.FormatCurl, "", true},
		{pin.SHA256, pin.FormatOkHttp, "", true},
		{pin.SHA256, pin.FormatHPKP, "", true},
		{pin.SHA256, "yaml", "", true},
	}
	for _, tt := range tests {
		got, err := pin.Print(tt.algo, d, tt.f)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("Print(%s, %s) = %q, %v; want %q (error %v)", tt.algo, tt.f, got, err, tt.want, tt.err)
		}
		if err != nil && tt.f != "yaml" && !errors.Is(err, pin.ErrFormat) {
			t.Errorf("Print(%s, %s) err = %v, want ErrFormat", tt.algo, tt.f, err)
		}
	}
}

// TestPrintParseRoundTrip prints every digest in every format that applies
// and parses it back.
func TestPrintParseRoundTrip(t *testing.T) {
	c := newCert(t, certs.Ed25519)
	for a, d := range digests(c) {
		for _, f := range pin.Formats {
			s, err := pin.Print(a, d, f)
			if err != nil {
				continue
			}
			p, err := pin.Parse(a, s)
			if err != nil {
				t.Errorf("Parse(%s, Print(%s)=%q): %v", a, f, s, err)
				continue
			}
			if !p.Equal(d) {
				t.Errorf("round trip %s %s: got %x, want %x", a, f, p.Digest, d)
			}
			if got := pin.Detect(s); got != f && !(f == pin.FormatHex && got == pin.FormatHex) {
				t.Errorf("Detect(%q) = %s, want %s", s, got, f)
			}
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range pin.Formats {
		if got, err := pin.ParseFormat(strings.ToUpper(string(f))); err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
	}
	if _, err := pin.ParseFormat("pem"); err == nil || !strings.Contains(err.Error(), `"pem"`) {
		t.Errorf("ParseFormat(pem) err = %v, want one quoting the value", err)
	}
}

func TestEqual(t *testing.T) {
	p := pin.Pin{Algo: pin.MD5, Digest: []byte{1, 2, 3}}
	tests := []struct {
		d    []byte
		want bool
	}{
		{[]byte{1, 2, 3}, true},
		{[]byte{1, 2, 4}, false},
		{[]byte{1, 2}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := p.Equal(tt.d); got != tt.want {
			t.Errorf("Equal(%x) = %v, want %v", tt.d, got, tt.want)
		}
	}
}

func TestSetBackupPinsAndStyle(t *testing.T) {
	cur, backup, other := newCert(t, certs.ECDSA), newCert(t, certs.ECDSA), newCert(t, certs.ECDSA)
	curPin, _ := pin.Print(pin.SPKI, digests(cur)[pin.SPKI], pin.FormatCurl)
	backupPin, _ := pin.Print(pin.SPKI, digests(backup)[pin.SPKI], pin.FormatHex)
	s := pin.Set{Algo: pin.SPKI}
	if err := s.Add(curPin); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(backupPin); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    *x509.Certificate
		want bool
	}{
		{"current", cur, true},
		{"backup", backup, true},
		{"other", other, false},
	}
	for _, tt := range tests {
		p, ok, err := s.Match(tt.c.Raw)
		if err != nil || ok != tt.want {
			t.Errorf("%s: Match = %v, %v; want %v", tt.name, ok, err, tt.want)
		}
		if ok && !p.Equal(digests(tt.c)[pin.SPKI]) {
			t.Errorf("%s: matched the wrong pin %v", tt.name, p)
		}
	}
	// The first pin was written for curl, so a mismatch shows curl's form.
	fp, err := s.Fingerprint(other.Raw)
	want, _ := pin.Print(pin.SPKI, digests(other)[pin.SPKI], pin.FormatCurl)
	if err != nil || fp != want {
		t.Errorf("Fingerprint = %q, %v; want %q", fp, err, want)
	}
	if err := s.Add("sha256//nope"); err == nil {
		t.Error("Add of a bad pin: no error")
	}
}

// TestOkHttpPinStartingWithSlash: OkHttp's sha256/ followed by base64 that
// starts with "/" reads "sha256//...", like curl's prefix.
func TestOkHttpPinStartingWithSlash(t *testing.T) {
	d := make([]byte, 32)
	d[0] = 0xfc // base64 starts with "/"
	for _, f := range []pin.Format{pin.FormatOkHttp, pin.FormatCurl} {
		s, err := pin.Print(pin.SPKI, d, f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := pin.Parse(pin.SPKI, s)
		if err != nil || !p.Equal(d) {
			t.Errorf("Parse(%q) = %x, %v; want %x", s, p.Digest, err, d)
		}
		if got := pin.Detect(s); got != f {
			t.Errorf("Detect(%q) = %s, want %s", s, got, f)
		}
	}
}

// TestStringEchoesInputFormat: a pin prints back the way it was written,
// so that an error quoting the expected pin is recognisable.
func TestStringEchoesInputFormat(t *testing.T) {
	c := newCert(t, certs.ECDSA)
	d := digests(c)
	b64 := base64.StdEncoding.EncodeToString(d[pin.SPKI])
	h := hex.EncodeToString(d[pin.SHA256])
	tests := []struct {
		algo pin.Algo
		in   string
		want string
	}{
		{pin.SPKI, "sha256//" + b64, "sha256//" + b64},
		{pin.SPKI, "sha256/" + b64, "sha256/" + b64},
		{pin.SPKI, `pin-sha256="` + b64 + `"`, `pin-sha256="` + b64 + `"`},
		{pin.SPKI, b64, b64},
		{pin.SPKI, hex.EncodeToString(d[pin.SPKI]), hex.EncodeToString(d[pin.SPKI])},
		{pin.SHA256, h, h},
		{pin.SHA256, colon(d[pin.SHA256]), colon(d[pin.SHA256])},
		{pin.SHA256, "sha256 Fingerprint=" + colon(d[pin.SHA256]), "sha256 Fingerprint=" + colon(d[pin.SHA256])},
		{pin.MD5, strings.ToUpper(hex.EncodeToString(d[pin.MD5])), hex.EncodeToString(d[pin.MD5])},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			p, err := pin.Parse(tc.algo, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
	// A pin made without Parse prints in the default format.
	if got := (pin.Pin{Algo: pin.SPKI, Digest: d[pin.SPKI]}).String(); got != b64 {
		t.Errorf("default spki String() = %q", got)
	}
}

// TestOtherAlgo finds a certificate digest given under the wrong algorithm.
func TestOtherAlgo(t *testing.T) {
	c := newCert(t, certs.ECDSA)
	d := digests(c)
	tests := []struct {
		algo   pin.Algo
		given  []byte
		wantOK bool
		other  pin.Algo
	}{
		{pin.SPKI, d[pin.SHA256], true, pin.SHA256},
		{pin.SHA256, d[pin.SPKI], true, pin.SPKI},
		{pin.SPKI, d[pin.SPKI], false, ""}, // the right algorithm: not "other"
		{pin.SHA256, make([]byte, 32), false, ""},
		{pin.MD5, d[pin.MD5], false, ""},
	}
	for _, tc := range tests {
		s := &pin.Set{Algo: tc.algo}
		if err := s.Add(hex.EncodeToString(tc.given)); err != nil {
			t.Fatal(err)
		}
		_, other, ok := s.OtherAlgo(c.Raw)
		if ok != tc.wantOK || other != tc.other {
			t.Errorf("%s pin: OtherAlgo = %q, %v; want %q, %v", tc.algo, other, ok, tc.other, tc.wantOK)
		}
	}
}
