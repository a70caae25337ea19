package certs_test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
)

func TestSelfSignedKinds(t *testing.T) {
	tests := []struct {
		typ  certs.KeyType
		bits int
		ok   bool
	}{
		{certs.RSA, 2048, true},
		{certs.ECDSA, 256, true},
		{certs.ECDSA, 384, true},
		{certs.Ed25519, 0, true},
		{certs.ECDSA, 123, false},
		{certs.RSA, 512, false},
		{"dsa", 0, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.typ), func(t *testing.T) {
			key, c, err := certs.SelfSigned(certs.Template{Type: tc.typ, Bits: tc.bits, CommonName: "x", SANs: []string{"example.com", "127.0.0.1"}, Days: 2})
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if c.Subject.CommonName != "x" || len(c.DNSNames) != 1 || len(c.IPAddresses) != 1 {
				t.Errorf("names: cn %q dns %v ip %v", c.Subject.CommonName, c.DNSNames, c.IPAddresses)
			}
			if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
				t.Errorf("not self-signed: %v", err)
			}
			if _, err := certs.EncodeKey(key); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestIssueDays: a certificate is valid for Days days from NotBefore, up
// to the last date a certificate can hold (9999-12-31 23:59:59 UTC); a
// longer or negative validity is an error, never a certificate that
// expired before it began (as a time.Duration that overflowed made).
func TestIssueDays(t *testing.T) {
	nb := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const last = 2912383 // days from 2026-03-01 to 9999-12-31
	tests := []struct {
		days int
		want time.Time // NotAfter; zero for an error
	}{
		{1, nb.Add(24 * time.Hour)},
		{365, nb.Add(365 * 24 * time.Hour)},
		{0, nb.Add(365 * 24 * time.Hour)},
		{106751, time.Date(2318, 6, 10, 12, 0, 0, 0, time.UTC)},
		{106752, time.Date(2318, 6, 11, 12, 0, 0, 0, time.UTC)}, // past a time.Duration
		{last, time.Date(9999, 12, 31, 12, 0, 0, 0, time.UTC)},
		{last + 1, time.Time{}},
		{999999999, time.Time{}},
		{math.MaxInt, time.Time{}},
		{-1, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.days), func(t *testing.T) {
			_, c, err := certs.SelfSigned(certs.Template{Type: certs.Ed25519, NotBefore: nb, Days: tc.days})
			if tc.want.IsZero() {
				if !errors.Is(err, certs.ErrValidity) || !strings.Contains(err.Error(), fmt.Sprint(tc.days)) {
					t.Fatalf("err = %v; want ErrValidity quoting %d", err, tc.days)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.NotBefore.Equal(nb) || !c.NotAfter.After(c.NotBefore) || !c.NotAfter.Equal(tc.want) {
				t.Errorf("valid from %s to %s; want %s to %s", c.NotBefore, c.NotAfter, nb, tc.want)
			}
		})
	}
}

// TestIssueNotAfter: NotAfter ends the validity earlier than Days would,
// as an issuer's end does; one that ends it before it begins (an expired
// issuer's) is an error, not a certificate that is never valid.
func TestIssueNotAfter(t *testing.T) {
	nb := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		notAfter time.Time
		want     time.Time // zero for an error
	}{
		{"unset", time.Time{}, nb.AddDate(0, 0, 30)},
		{"later than Days", nb.AddDate(1, 0, 0), nb.AddDate(0, 0, 30)},
		{"earlier than Days", nb.Add(time.Hour), nb.Add(time.Hour)},
		{"at NotBefore", nb, time.Time{}},
		{"before NotBefore", nb.AddDate(-1, 0, 0), time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c, err := certs.SelfSigned(certs.Template{Type: certs.Ed25519, NotBefore: nb, Days: 30, NotAfter: tc.notAfter})
			if tc.want.IsZero() {
				if !errors.Is(err, certs.ErrValidity) {
					t.Fatalf("err = %v; want ErrValidity", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.NotAfter.Equal(tc.want) {
				t.Errorf("NotAfter %s; want %s", c.NotAfter, tc.want)
			}
		})
	}
}

func TestMaxDays(t *testing.T) {
	for _, tc := range []struct {
		notBefore time.Time
		want      int
	}{
		{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), 2912383},
		{time.Date(2026, 3, 1, 23, 59, 59, 0, time.UTC), 2912383},
		{time.Date(2026, 3, 1, 23, 59, 59, 1, time.UTC), 2912382},
		{time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("UTC-14", -14*3600)), 2912382},
		{time.Date(9999, 12, 30, 23, 59, 59, 0, time.UTC), 1},
		{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), 3652058},
	} {
		if got := certs.MaxDays(tc.notBefore); got != tc.want {
			t.Errorf("MaxDays(%s) = %d, want %d", tc.notBefore, got, tc.want)
		}
	}
}

// TestLoadFormats loads the recipe's combined file, separate files, DER,
// and every failure the CLI must explain.
func TestLoadFormats(t *testing.T) {
	dir := t.TempDir()
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "a"})
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _, _ := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "b"})
	keyPEM, _ := certs.EncodeKey(key)
	otherPEM, _ := certs.EncodeKey(otherKey)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	combined := write("combined.pem", append(append([]byte{}, keyPEM...), certs.EncodeCert(c)...))
	certOnly := write("cert.pem", certs.EncodeCert(c))
	keyOnly := write("key.pem", keyPEM)
	other := write("other.pem", otherPEM)
	der := write("cert.der", c.Raw)
	junk := write("junk.pem", []byte("hello"))
	tests := []struct {
		name      string
		cert, key string
		want      error
	}{
		{"combined", combined, "", nil},
		{"separate", certOnly, keyOnly, nil},
		{"cert without key", certOnly, "", certs.ErrNoKey},
		{"mismatch", certOnly, other, certs.ErrKeyMismatch},
		{"junk", junk, "", certs.ErrNoCertificate},
		{"missing", filepath.Join(dir, "nope.pem"), "", os.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := certs.LoadKeyPair(tc.cert, tc.key)
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	for _, p := range []string{combined, certOnly, der} {
		cs, err := certs.LoadCertificates(p)
		if err != nil || len(cs) != 1 || !cs[0].Equal(c) {
			t.Errorf("LoadCertificates(%s) = %v, %v", filepath.Base(p), len(cs), err)
		}
	}
}

// TestRecipeOpenSSLFile loads a file made by the recipe's openssl commands
// (PKCS#1 or PKCS#8 key, then certificate).
func TestRecipeOpenSSLFile(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	sh := `openssl genrsa -out key.pem 2>/dev/null && yes '' | openssl req -new -x509 -key key.pem -out crt.pem -days 36500 2>/dev/null && cat key.pem crt.pem > cert.pem`
	cmd := exec.Command("sh", "-c", sh)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	tc, err := certs.LoadKeyPair(filepath.Join(dir, "cert.pem"), "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(mustRead(t, filepath.Join(dir, "crt.pem")))
	want, _ := x509.ParseCertificate(b.Bytes)
	if !tc.Leaf.Equal(want) {
		t.Fatal("loaded a different certificate")
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteFilesNeverOverwritesWithoutForce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k.pem")
	if err := certs.WriteFiles([]certs.File{{Path: p, Data: []byte("one"), Mode: 0o600}}, false); err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteFiles([]certs.File{{Path: p, Data: []byte("two"), Mode: 0o600}}, false); !errors.Is(err, certs.ErrExists) {
		t.Fatalf("overwrite without force: %v", err)
	}
	if string(mustRead(t, p)) != "one" {
		t.Fatal("file changed")
	}
	os.Chmod(p, 0o644)
	if err := certs.WriteFiles([]certs.File{{Path: p, Data: []byte("two"), Mode: 0o600}}, true); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if string(mustRead(t, p)) != "two" || st.Mode().Perm() != 0o600 {
		t.Fatalf("forced write: %q mode %v", mustRead(t, p), st.Mode().Perm())
	}
	assertNoTemps(t, filepath.Dir(p))
}

// TestWriteFilesAttacks: a symlink planted where a key is to be written
// must not redirect the write (even with force), and two names for one
// file must not leave a key without its certificate.
func TestWriteFilesAttacks(t *testing.T) {
	key := certs.File{Data: []byte("KEY"), Mode: 0o600}
	crt := certs.File{Data: []byte("CERT"), Mode: 0o644}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) (keyPath, certPath string)
		force bool
		want  error
	}{
		{"symlink at key, force", func(t *testing.T, dir string) (string, string) {
			mustSymlink(t, filepath.Join(dir, "victim"), filepath.Join(dir, "key.pem"))
			return filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
		}, true, certs.ErrSymlink},
		{"dangling symlink at key", func(t *testing.T, dir string) (string, string) {
			mustSymlink(t, filepath.Join(dir, "nothing-yet"), filepath.Join(dir, "key.pem"))
			return filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
		}, false, certs.ErrSymlink},
		{"symlink at cert, force", func(t *testing.T, dir string) (string, string) {
			mustSymlink(t, filepath.Join(dir, "victim"), filepath.Join(dir, "cert.pem"))
			return filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
		}, true, certs.ErrSymlink},
		{"same file through a directory symlink", func(t *testing.T, dir string) (string, string) {
			os.Mkdir(filepath.Join(dir, "real"), 0o700)
			mustSymlink(t, filepath.Join(dir, "real"), filepath.Join(dir, "alias"))
			return filepath.Join(dir, "real", "x.pem"), filepath.Join(dir, "alias", "x.pem")
		}, false, certs.ErrSameFile},
		{"same file through a directory symlink, force", func(t *testing.T, dir string) (string, string) {
			os.Mkdir(filepath.Join(dir, "real"), 0o700)
			mustSymlink(t, filepath.Join(dir, "real"), filepath.Join(dir, "alias"))
			return filepath.Join(dir, "alias", "x.pem"), filepath.Join(dir, "real", "./x.pem")
		}, true, certs.ErrSameFile},
		{"cert exists: key not written either", func(t *testing.T, dir string) (string, string) {
			os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("old"), 0o644)
			return filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
		}, false, certs.ErrExists},
		{"cert directory missing: key not written either", func(t *testing.T, dir string) (string, string) {
			return filepath.Join(dir, "key.pem"), filepath.Join(dir, "nodir", "cert.pem")
		}, true, os.ErrNotExist},
		{"key directory every user may write", func(t *testing.T, dir string) (string, string) {
			shared := filepath.Join(dir, "shared")
			os.Mkdir(shared, 0o700)
			os.Chmod(shared, 0o777)
			return filepath.Join(shared, "key.pem"), filepath.Join(dir, "cert.pem")
		}, true, certs.ErrUnsafeDir},
		// The other user could swap the pair for one they hold, which a
		// proxy reloading --cert would pick up.
		{"key directory a symlink into another user's directory", func(t *testing.T, dir string) (string, string) {
			theirs := filepath.Join(dir, "theirs")
			os.Mkdir(theirs, 0o755)
			if err := os.Lchown(theirs, 54321, -1); err != nil {
				t.Skipf("cannot give a directory to another user here: %v", err)
			}
			mustSymlink(t, theirs, filepath.Join(dir, "keys"))
			return filepath.Join(dir, "keys", "key.pem"), filepath.Join(dir, "cert.pem")
		}, true, certs.ErrUnsafeDir},
		{"cert is a directory", func(t *testing.T, dir string) (string, string) {
			os.Mkdir(filepath.Join(dir, "cert.pem"), 0o700)
			return filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
		}, true, certs.ErrNotRegular},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			victim := filepath.Join(dir, "victim")
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			kp, cp := tc.setup(t, dir)
			before := listDir(t, dir)
			k, c := key, crt
			k.Path, c.Path = kp, cp
			err := certs.WriteFiles([]certs.File{k, c}, tc.force)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if got := string(mustRead(t, victim)); got != "precious" {
				t.Fatalf("symlink target overwritten: %q", got)
			}
			if after := listDir(t, dir); after != before {
				t.Fatalf("files changed on failure:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestWriteFilesPair(t *testing.T) {
	dir := t.TempDir()
	kp, cp := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem")
	// A file mode umask would widen must still come out 0600.
	os.WriteFile(kp, []byte("old"), 0o666)
	os.Chmod(kp, 0o666)
	err := certs.WriteFiles([]certs.File{{Path: kp, Data: []byte("K"), Mode: 0o600}, {Path: cp, Data: []byte("C"), Mode: 0o644}}, true)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{kp: 0o600, cp: 0o644} {
		st, err := os.Lstat(p)
		if err != nil || st.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", p, st.Mode(), err, want)
		}
	}
	if string(mustRead(t, kp)) != "K" || string(mustRead(t, cp)) != "C" {
		t.Error("wrong contents")
	}
	assertNoTemps(t, dir)
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// listDir describes every entry under dir with its mode and contents.
func listDir(t *testing.T, dir string) string {
	t.Helper()
	var b []byte
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		b = append(b, fmt.Sprintf("%s %v", p[len(dir):], fi.Mode())...)
		if fi.Mode().IsRegular() {
			b = append(b, fmt.Sprintf(" %q", mustRead(t, p))...)
		}
		b = append(b, '\n')
		return nil
	})
	return string(b)
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// TestUnreadableKeysSayWhy: keys made by openssl that tlspin cannot use
// are named at load time, not reported as "no private key" or left to fail
// the handshake.
func TestUnreadableKeysSayWhy(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	sh := `set -e
openssl genpkey -algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048 -out pss.key 2>/dev/null
openssl req -new -x509 -key pss.key -out pss.crt -subj /CN=pss -days 2 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key
openssl req -new -x509 -key ec.key -out ec.crt -subj /CN=ec -days 2 2>/dev/null
openssl pkey -in ec.key -aes256 -passout pass:x -out pkcs8enc.key
openssl ec -in ec.key -aes128 -passout pass:x -out legacyenc.key 2>/dev/null
openssl genpkey -algorithm X25519 -out x25519.key
cat pss.key ec.crt > pss-key-ec-cert.pem`
	cmd := exec.Command("sh", "-c", sh)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	tests := []struct {
		cert, key string
		want      error
		says      string
	}{
		{"ec.crt", "pkcs8enc.key", certs.ErrEncryptedKey, "PKCS#8 ENCRYPTED PRIVATE KEY"},
		{"ec.crt", "legacyenc.key", certs.ErrEncryptedKey, "PEM encryption AES-128-CBC"},
		{"ec.crt", "pss.key", certs.ErrUnsupportedKey, "RSA-PSS (OID 1.2.840.113549.1.1.10) private key"},
		{"pss.crt", "pss.key", certs.ErrUnsupportedKey, "RSA-PSS (OID 1.2.840.113549.1.1.10) public key in the certificate"},
		{"ec.crt", "x25519.key", certs.ErrUnsupportedKey, "X25519"},
		{"ec.crt", "ec.key", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.key+"+"+tc.cert, func(t *testing.T) {
			_, err := certs.LoadKeyPair(filepath.Join(dir, tc.cert), filepath.Join(dir, tc.key))
			if !errors.Is(err, tc.want) || (err != nil && !strings.Contains(err.Error(), tc.says)) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.want, tc.says)
			}
		})
	}
}

// TestKeyPairHintNamesTheFlag: a certificate file without its key says
// how to give the key, naming the flag of the command that read it: --key
// (serve, proxy, send) by default, the caller's own (compare's --ref-key),
// or none where the key has no flag of its own and must be in the file
// (compare's --cert). A key file given says only which file lacks a key.
func TestKeyPairHintNamesTheFlag(t *testing.T) {
	_, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "hint", Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	certOnly := certs.EncodeCert(c)
	tests := []struct {
		name    string
		parse   func() error
		says    string
		mustNot []string
	}{
		{"ParseKeyPair: --key", func() error {
			_, err := certs.ParseKeyPair(certOnly, nil, "c.pem", "")
			return err
		}, `no private key found in "c.pem": give the key with --key, or put it in the same file as the certificate`, nil},
		{"a flag of the caller's", func() error {
			_, err := certs.ParseKeyPairFlag(certOnly, nil, "c.pem", "", "--ref-key")
			return err
		}, `no private key found in "c.pem": give the key with --ref-key, or put it in the same file as the certificate`, []string{"--key"}},
		{"no flag: the key goes in the file", func() error {
			_, err := certs.ParseKeyPairFlag(certOnly, nil, "c.pem", "", "")
			return err
		}, `no private key found in "c.pem": put it in the same file as the certificate`, []string{"--", "give the key"}},
		{"a key file given", func() error {
			_, err := certs.ParseKeyPairFlag(certOnly, certOnly, "c.pem", "k.pem", "--ref-key")
			return err
		}, `no private key found (file "k.pem")`, []string{"--", "give the key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse()
			if !errors.Is(err, certs.ErrNoKey) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err = %v; want %v saying %q", err, certs.ErrNoKey, tt.says)
			}
			for _, s := range tt.mustNot {
				if strings.Contains(err.Error(), s) {
					t.Errorf("err %q says %q", err, s)
				}
			}
		})
	}
}

// TestByteOrderMark reads PEM files that an editor saved with a byte order
// mark, or with CRLF line ends, as the same files without: the mark before
// the first "-----BEGIN" hid that block from pem.Decode, so the key of
// the recipe's cert.pem was "not found", and the first certificate of a
// chain was skipped, the second printed and checked as the leaf.
func TestByteOrderMark(t *testing.T) {
	caKey, ca, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "ca", IsCA: true})
	if err != nil {
		t.Fatal(err)
	}
	key, err := certs.GenerateKey(certs.ECDSA, 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certs.Issue(certs.Template{CommonName: "leaf"}, key.Public(), ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := certs.EncodeKey(key)
	chain := append(certs.EncodeCert(leaf), certs.EncodeCert(ca)...)
	combined := append(append([]byte{}, keyPEM...), chain...)
	const bom = "\ufeff"
	crlf := func(b []byte) []byte { return []byte(strings.ReplaceAll(string(b), "\n", "\r\n")) }
	tests := []struct {
		name            string
		chain, combined []byte
	}{
		{"plain", chain, combined},
		{"bom", append([]byte(bom), chain...), append([]byte(bom), combined...)},
		{"crlf", crlf(chain), crlf(combined)},
		{"bom and crlf", append([]byte(bom), crlf(chain)...), append([]byte(bom), crlf(combined)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := certs.ParseCertificates(tc.chain)
			if err != nil || len(cs) != 2 || !cs[0].Equal(leaf) || !cs[1].Equal(ca) {
				t.Errorf("ParseCertificates: %d certificates, first is the leaf: %v, err %v; want leaf then CA", len(cs), len(cs) > 0 && cs[0].Equal(leaf), err)
			}
			pair, err := certs.ParseKeyPair(tc.combined, nil, "cert.pem", "")
			if err != nil || !pair.Leaf.Equal(leaf) || len(pair.Certificate) != 2 {
				t.Errorf("ParseKeyPair: %v", err)
			}
			if _, err := certs.ParseKey(tc.combined); err != nil {
				t.Errorf("ParseKey: %v", err)
			}
			keys, err := certs.ParsePublicKeys(tc.combined)
			if err != nil || len(keys) != 1 || keys[0].Kind != "private key" {
				t.Errorf("ParsePublicKeys: %v, %v", keys, err)
			}
		})
	}
}
