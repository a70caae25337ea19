package keypair

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/tlspin/tlspin/core/certs"
)

// pairPEM returns a fresh key pair as one PEM file's contents.
func pairPEM(t *testing.T, cn string) []byte {
	t.Helper()
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: cn})
	if err != nil {
		t.Fatal(err)
	}
	k, err := certs.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return append(k, certs.EncodeCert(c)...)
}

// TestReloadAfterAHalfWrittenFile: a certificate rewritten in place
// (cp, cat >) is seen half written by one check, and finished just after
// that check read it. The next check must load the finished file: the
// proxy used to note the finished file as the one that failed, and kept
// the old certificate for good, warning that the new one does not load.
func TestReloadAfterAHalfWrittenFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cert.pem")
	old, renewed := pairPEM(t, "old"), pairPEM(t, "renewed")
	if err := os.WriteFile(file, old, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, renewed[:len(renewed)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	var finished bool
	c.load = func(certFile, keyFile string) (tls.Certificate, error) {
		pair, err := certs.LoadKeyPair(certFile, keyFile)
		if !finished {
			// The writer finishes between the read and what follows.
			finished = true
			if werr := os.WriteFile(file, renewed, 0o600); werr != nil {
				t.Fatal(werr)
			}
		}
		return pair, err
	}
	c.check() // half written: does not load, the old pair stays
	if got := c.Current().Leaf.Subject.CommonName; got != "old" {
		t.Fatalf("after the half-written file, serving %q, want old", got)
	}
	c.check()
	want, err := tls.X509KeyPair(renewed, renewed)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Current(); !bytes.Equal(got.Certificate[0], want.Certificate[0]) {
		t.Errorf("after the file was finished, serving %q, want the renewed certificate", got.Leaf.Subject.CommonName)
	}
}
