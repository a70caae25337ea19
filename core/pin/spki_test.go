package pin_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/pin"
)

// sampleCerts returns DER certificates of every shape the SPKI reader
// meets: each key type (long-form lengths of one and two bytes), and a
// version 1 certificate, which has no version field.
func sampleCerts(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, kt := range []certs.KeyType{certs.RSA, certs.ECDSA, certs.Ed25519} {
		out[string(kt)] = newCert(t, kt).Raw
	}
	out["v1"] = versionOne(t)
	return out
}

// versionOne returns a self-signed version 1 certificate: one without
// extensions, its version field removed (the signature no longer matches,
// which parsing does not check).
func versionOne(t testing.TB) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "v1"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	v1 := withTBSFields(t, der, func(fields [][]byte) [][]byte {
		if fields[0][0] != 0xa0 {
			t.Fatalf("tbsCertificate starts with tag 0x%02x, not a version", fields[0][0])
		}
		return fields[1:]
	})
	c, err := x509.ParseCertificate(v1)
	if err != nil || c.Version != 1 {
		t.Fatalf("crafted version 1 certificate: version %v, %v", c, err)
	}
	return v1
}

// withTBSFields returns der with the fields of its tbsCertificate (each
// element whole, DER) replaced by what edit makes of them.
func withTBSFields(t testing.TB, der []byte, edit func(fields [][]byte) [][]byte) []byte {
	t.Helper()
	var cert struct {
		TBS    asn1.RawValue
		SigAlg asn1.RawValue
		Sig    asn1.RawValue
	}
	if _, err := asn1.Unmarshal(der, &cert); err != nil {
		t.Fatal(err)
	}
	var fields [][]byte
	for rest := cert.TBS.Bytes; len(rest) > 0; {
		var f asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &f); err != nil {
			t.Fatal(err)
		}
		fields = append(fields, f.FullBytes)
	}
	cert.TBS = asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: bytes.Join(edit(fields), nil)}
	out, err := asn1.Marshal(cert)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSPKIMatchesX509 checks the spki pin of every sample against the
// SubjectPublicKeyInfo crypto/x509 finds.
func TestSPKIMatchesX509(t *testing.T) {
	for name, der := range sampleCerts(t) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		got, err := pin.Sum(pin.SPKI, der)
		if err != nil || !bytes.Equal(got, want[:]) {
			t.Errorf("%s: Sum(spki) = %x, %v; want %x", name, got, err, want)
		}
	}
}

// TestSPKIRefusesWhatX509Refuses feeds the SPKI reader certificates an
// attacker or a broken file could hand it: cut short anywhere, with bytes
// after them, with a length DER does not allow, with fields missing or
// out of place. Each is refused, as crypto/x509 refuses it.
func TestSPKIRefusesWhatX509Refuses(t *testing.T) {
	der := newCert(t, certs.ECDSA).Raw // 0x30 0x82 HI LO: a two-byte length
	if der[0] != 0x30 || der[1] != 0x82 {
		t.Fatalf("sample starts % x, want 30 82", der[:2])
	}
	with := func(prefix []byte, body []byte) []byte { return append(append([]byte{}, prefix...), body...) }
	body := der[4:]
	n := len(body)
	cases := map[string][]byte{
		"empty":                    nil,
		"tag alone":                {0x30},
		"trailing byte":            append(append([]byte{}, der...), 0),
		"indefinite length":        with([]byte{0x30, 0x80}, append(append([]byte{}, body...), 0, 0)),
		"length with leading zero": with([]byte{0x30, 0x83, 0, byte(n >> 8), byte(n)}, body),
		"long form under 128":      with([]byte{0x30, 0x81, 0x05}, []byte{0x02, 0x01, 0x01, 0x05, 0x00}),
		"five length bytes":        with([]byte{0x30, 0x85, 0, 0, 0, byte(n >> 8), byte(n)}, body),
		"not a sequence":           with([]byte{0x31, 0x82, byte(n >> 8), byte(n)}, body),
		"length past the end":      with([]byte{0x30, 0x82, byte((n + 1) >> 8), byte(n + 1)}, body),
		"no public key":            withTBSFields(t, der, func(f [][]byte) [][]byte { return f[:6] }),
		"serial missing":           withTBSFields(t, der, func(f [][]byte) [][]byte { return append(f[:1:1], f[2:]...) }),
	}
	for name, in := range cases {
		if _, err := x509.ParseCertificate(in); err == nil {
			t.Fatalf("%s: crypto/x509 parses it: not a malformed case", name)
		}
		if d, err := pin.Sum(pin.SPKI, in); err == nil {
			t.Errorf("%s: Sum(spki) = %x, want an error", name, d)
		}
	}
	for i := range der {
		if d, err := pin.Sum(pin.SPKI, der[:i]); err == nil {
			t.Fatalf("cut to %d of %d bytes: Sum(spki) = %x, want an error", i, len(der), d)
		}
	}
}

// FuzzSPKI checks that the SPKI reader never panics, and that on every
// input crypto/x509 parses as a certificate it finds the same public key.
func FuzzSPKI(f *testing.F) {
	for _, der := range sampleCerts(f) {
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		got, err := pin.Sum(pin.SPKI, der)
		c, xerr := x509.ParseCertificate(der)
		if xerr != nil {
			return
		}
		want := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		if err != nil || !bytes.Equal(got, want[:]) {
			t.Fatalf("Sum(spki) = %x, %v; crypto/x509's key hashes to %x", got, err, want)
		}
	})
}

// BenchmarkSum times each algorithm's pin of one ECDSA P-256 certificate.
func BenchmarkSum(b *testing.B) {
	der := newCert(b, certs.ECDSA).Raw
	for _, a := range pin.Algos {
		b.Run(string(a), func(b *testing.B) {
			for b.Loop() {
				if _, err := pin.Sum(a, der); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
