package cli_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/verifiers/ca"
)

// TestCertOutput: stdout holds the pins only (what a script captures);
// what was written goes to stderr; --json has both.
func TestCertOutput(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.pem")
	stdout, stderr, code := inProcess(t, "", "cert", "--type", "ecdsa", "--out", p)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "md5 ") || !strings.HasPrefix(lines[2], "spki ") {
		t.Errorf("stdout is not the three pins: %q", stdout)
	}
	if !strings.Contains(stderr, "wrote "+p) {
		t.Errorf("stderr does not say what was written: %q", stderr)
	}
	// The pins are those fingerprint prints, in the same default formats.
	for _, l := range lines {
		algo, want, _ := strings.Cut(l, " ")
		got, _, _ := inProcess(t, "", "fingerprint", "--algo", algo, p)
		if strings.TrimSpace(got) != strings.TrimSpace(want) {
			t.Errorf("cert prints %s %q, fingerprint %q", algo, strings.TrimSpace(want), strings.TrimSpace(got))
		}
	}

	stdout, stderr, code = inProcess(t, "", "cert", "--json", "--type", "ed25519", "--out", filepath.Join(dir, "j.pem"), "--key-out", filepath.Join(dir, "j.key"))
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Certificate, Key, Subject string
		Pins                      map[string]string
		CA                        *bool
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	spki, _, _ := inProcess(t, "", "fingerprint", "--algo", "spki", filepath.Join(dir, "j.pem"))
	// Without --cn, a leaf is for localhost (a CA is "tlspin CA": TestCertIssuedByCA).
	if doc.Subject != "CN=localhost" {
		t.Errorf("cert without --cn: subject %q; want CN=localhost", doc.Subject)
	}
	if doc.Certificate != filepath.Join(dir, "j.pem") || doc.Key != filepath.Join(dir, "j.key") || doc.CA == nil || *doc.CA ||
		doc.Pins["spki"] != strings.TrimSpace(spki) || len(doc.Pins["sha256"]) != 64 || len(doc.Pins["md5"]) != 32 {
		t.Errorf("cert --json = %s", stdout)
	}
}

func TestCertUsage(t *testing.T) {
	dir := t.TempDir()
	leaf := filepath.Join(dir, "leaf.pem")
	if _, stderr, code := inProcess(t, "", "cert", "--type", "ecdsa", "--out", leaf); code != cli.ExitOK {
		t.Fatal(stderr)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--type", "ed25519", "--bits", "256"}, "ed25519 keys have one size"},
		{[]string{"--ca-key", leaf}, "--ca-key needs --ca-cert"},
		{[]string{"--ca-cert", leaf}, "is not a CA certificate"},
		{[]string{"--days", "0"}, "--days 0"},
		{[]string{"--san", "https://foo.example/"}, `--san "https://foo.example/": not a DNS name`},
		{[]string{"--san", "not a name!"}, `--san "not a name!": not a DNS name`},
		{[]string{"--san", "-bad.example"}, "not a DNS name"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "x.pem")
			stdout, stderr, code := inProcess(t, "", append([]string{"cert", "--out", out}, tc.args...)...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want usage error %q", code, stdout, stderr, tc.want)
			}
		})
	}
}

// TestCertDays: --days up to the last date a certificate can hold
// (9999-12-31 23:59:59 UTC) makes a certificate valid that long, even past
// the 292 years of a time.Duration; a longer one is a usage error giving
// the largest accepted, and writes nothing.
func TestCertDays(t *testing.T) {
	// The command's own now comes after the test's: its largest is at
	// most the first, and at least the second unless a minute passes.
	most, least := certs.MaxDays(time.Now()), certs.MaxDays(time.Now().Add(time.Minute))
	largest := regexp.MustCompile(`the largest accepted today is (\d+)\n`)
	for _, tc := range []struct {
		days int
		ok   bool
	}{
		{1, true},
		{106752, true}, // one day more than a time.Duration holds
		{least, true},
		{most + 1, false},
		{999999999, false},
		{math.MaxInt64, false},
	} {
		t.Run(strconv.Itoa(tc.days), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "c.pem")
			start := time.Now()
			stdout, stderr, code := inProcess(t, "", "cert", "--type", "ed25519", "--days", strconv.Itoa(tc.days), "--out", out)
			if !tc.ok {
				m := largest.FindStringSubmatch(stderr)
				if code != cli.ExitUsage || stdout != "" || !strings.Contains(stderr, "--days "+strconv.Itoa(tc.days)+": ") || m == nil {
					t.Fatalf("exit %d, stdout %q, stderr %q; want a usage error quoting --days and the largest accepted", code, stdout, stderr)
				}
				if n, _ := strconv.Atoi(m[1]); n < least || n > most {
					t.Errorf("largest accepted %s; want %d to %d", m[1], least, most)
				}
				if _, err := os.Lstat(out); !os.IsNotExist(err) {
					t.Errorf("%s written after a usage error (%v)", out, err)
				}
				return
			}
			if code != cli.ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			cs, err := certs.LoadCertificates(out)
			if err != nil {
				t.Fatal(err)
			}
			c := cs[0]
			want := start.UTC().AddDate(0, 0, tc.days)
			if !c.NotAfter.After(c.NotBefore) || c.NotAfter.Before(want.Add(-2*time.Minute)) || c.NotAfter.After(want) {
				t.Errorf("--days %d: valid from %s to %s; want about %s", tc.days, c.NotBefore, c.NotAfter, want)
			}
		})
	}
}

// TestCertRefusesStdout: "-" as --out or --key-out, which elsewhere is
// stdin or stdout, is a usage error saying to name a file, not a file
// named "-" (nor a private key on a terminal).
func TestCertRefusesStdout(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", "-"}, "--out -: cert writes its key and certificate to files, never to stdout; name a file"},
		{[]string{"--out", "-", "--key-out", "key.pem"}, "--out -: "},
		{[]string{"--out", "cert.pem", "--key-out", "-"}, "--key-out -: cert writes a private key to a file, never to stdout; name a file"},
		// An empty --out (a variable unset) used to fail as an empty
		// path, exit 1, in files' words.
		{[]string{"--out", ""}, `--out "": name the file to write`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Chdir(t.TempDir())
			stdout, stderr, code := inProcess(t, "", append([]string{"cert", "--type", "ed25519"}, tc.args...)...)
			if code != cli.ExitUsage || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want usage error %q", code, stdout, stderr, tc.want)
			}
			if names, _ := filepath.Glob("*"); len(names) != 0 {
				t.Errorf("wrote %q", names)
			}
		})
	}
}

// TestCertExpiredCA: a --ca-cert that has expired is refused before a key
// is made: a certificate never outlives its CA, so it would end before it
// began.
func TestCertExpiredCA(t *testing.T) {
	dir := t.TempDir()
	key, ca, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "old CA", IsCA: true, NotBefore: time.Now().AddDate(-2, 0, 0), Days: 30})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := certs.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile, leaf := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "leaf.pem")
	if err := os.WriteFile(caFile, append(keyPEM, certs.EncodeCert(ca)...), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := inProcess(t, "", "cert", "--ca-cert", caFile, "--out", leaf)
	want := fmt.Sprintf("--ca-cert %q: \"CN=old CA\" expired on %s", caFile, ca.NotAfter.UTC().Format(time.DateTime+" UTC"))
	if code != cli.ExitUsage || stdout != "" || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stdout %q, stderr %q; want usage error %q", code, stdout, stderr, want)
	}
	if _, err := os.Lstat(leaf); !os.IsNotExist(err) {
		t.Errorf("%s written from an expired CA (%v)", leaf, err)
	}
}

// TestCertCANotYetValid: a CA whose validity starts later (its clock
// ahead of ours) issues a certificate that starts with it, not before,
// and the user is told from when the chain is valid.
func TestCertCANotYetValid(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	key, ca, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "early CA", IsCA: true, NotBefore: start, Days: 30})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := certs.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile, leafFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "leaf.pem")
	if err := os.WriteFile(caFile, append(keyPEM, certs.EncodeCert(ca)...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := inProcess(t, "", "cert", "--ca-cert", caFile, "--days", "10", "--out", leafFile)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	pair, err := tls.LoadX509KeyPair(leafFile, leafFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if !leaf.NotBefore.Equal(ca.NotBefore) || !leaf.NotAfter.Equal(ca.NotBefore.AddDate(0, 0, 10)) {
		t.Errorf("leaf valid %s to %s; want from its CA's start %s, for 10 days", leaf.NotBefore, leaf.NotAfter, ca.NotBefore)
	}
	if want := "valid only from " + start.UTC().Format(time.DateTime+" UTC") + ", when its CA becomes valid"; !strings.Contains(stderr, want) {
		t.Errorf("stderr %q; want %q", stderr, want)
	}
	if strings.Contains(stderr, "valid only until") {
		t.Errorf("stderr %q: the leaf ends before its CA, yet a note says the CA cut it short", stderr)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: start.Add(time.Hour)}); err != nil {
		t.Errorf("the chain does not verify once its CA is valid: %v", err)
	}
}

// TestCertCAKeyHint: a --ca-cert without its key says to give it with
// --ca-key, cert's flag for it (cert has no --key).
func TestCertCAKeyHint(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if _, stderr, code := inProcess(t, "", "cert", "--ca", "--type", "ecdsa", "--out", ca); code != cli.ExitOK {
		t.Fatal(stderr)
	}
	pair, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	_, crt, _ := strings.Cut(string(pair), "-----BEGIN CERTIFICATE-----")
	caOnly := filepath.Join(dir, "caonly.pem")
	if err := os.WriteFile(caOnly, []byte("-----BEGIN CERTIFICATE-----"+crt), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := inProcess(t, "", "cert", "--ca-cert", caOnly, "--out", filepath.Join(dir, "leaf.pem"))
	if code == cli.ExitOK || !strings.Contains(stderr, "give the key with --ca-key") || strings.Contains(stderr, "--key,") {
		t.Errorf("exit %d, stderr %q; want a failure saying to give the key with --ca-key", code, stderr)
	}
}

// TestCertRefusesItsTarget: an --out that cannot be written is refused
// before any key is made, saying why, as a usage error (exit 2, as for a
// file named on the command line that cannot be read); only an existing
// file is a reason to suggest --force, which a directory or a symbolic
// link do not change.
func TestCertRefusesItsTarget(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.pem")
	if _, stderr, code := inProcess(t, "", "cert", "--type", "ecdsa", "--out", existing); code != cli.ExitOK {
		t.Fatal(stderr)
	}
	link := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		out   string
		force bool
		want  string
	}{
		{existing, false, "file exists: \"" + existing + "\" (use --force to overwrite)"},
		{dir, false, "is a directory; give a file name in it"},
		{dir, true, "is a directory; give a file name in it"},
		{link, false, "refusing to write through a symbolic link"},
		{filepath.Join(dir, "missing", "x.pem"), false, "no such file or directory"},
	} {
		args := []string{"cert", "--type", "ecdsa", "--out", tc.out}
		if tc.force {
			args = append(args, "--force")
		}
		_, stderr, code := inProcess(t, "", args...)
		if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) || (tc.out != existing && strings.Contains(stderr, "--force")) {
			t.Errorf("cert --out %s (force %v): exit %d, %q; want %q", tc.out, tc.force, code, stderr, tc.want)
		}
	}
}

// TestCertIssuedByCA: cert --ca makes a CA, cert --ca-cert issues a leaf
// from it that chains to it by x509.Verify, and the ca verifier accepts
// the chain the leaf file holds.
func TestCertIssuedByCA(t *testing.T) {
	dir := t.TempDir()
	caFile, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	leafFile := filepath.Join(dir, "leaf.pem")
	for _, args := range [][]string{
		{"cert", "--ca", "--type", "ecdsa", "--out", caFile, "--key-out", caKey},
		{"cert", "--ca-cert", caFile, "--ca-key", caKey, "--type", "rsa", "--san", "svc.test", "--out", leafFile},
	} {
		if _, stderr, code := inProcess(t, "", args...); code != cli.ExitOK {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
	}
	caCerts, err := certs.LoadCertificates(caFile)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := certs.LoadKeyPair(leafFile, "")
	if err != nil {
		t.Fatal(err)
	}
	root := caCerts[0]
	if !root.IsCA || root.Subject.CommonName != "tlspin CA" || len(kp.Certificate) != 2 || !kp.Leaf.NotAfter.Before(root.NotAfter.Add(1)) {
		t.Fatalf("CA %q (IsCA %v), leaf file holds %d certificates", root.Subject, root.IsCA, len(kp.Certificate))
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	if _, err := kp.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "svc.test"}); err != nil {
		t.Fatalf("leaf does not chain to the CA: %v", err)
	}

	v := ca.New(nil)
	if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{"ca-file": {caFile}}}); err != nil {
		t.Fatal(err)
	}
	verdict, err := v.Verify(context.Background(), &verify.Request{PeerChain: kp.Certificate, ServerName: "svc.test", Side: verify.ClientVerifiesServer})
	if err != nil || !verdict.Allow {
		t.Fatalf("ca verifier: %+v, %v", verdict, err)
	}
	// And a self-signed certificate with the same name is not accepted.
	other := filepath.Join(dir, "other.pem")
	inProcess(t, "", "cert", "--type", "ecdsa", "--san", "svc.test", "--out", other)
	okp, _ := certs.LoadKeyPair(other, "")
	verdict, _ = v.Verify(context.Background(), &verify.Request{PeerChain: okp.Certificate, ServerName: "svc.test", Side: verify.ClientVerifiesServer})
	if verdict == nil || verdict.Allow {
		t.Fatalf("ca verifier accepted a certificate the CA did not issue: %+v", verdict)
	}
}

// TestCertWarnsOfAReadableCAKey: a CA's key that other users may read
// lets them issue certificates its pins trust; cert issues from it as
// asked, warning.
func TestCertWarnsOfAReadableCAKey(t *testing.T) {
	const warning = "readable by other users"
	for _, mode := range []os.FileMode{0o644, 0o600} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			key, ca, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "CA", IsCA: true, Days: 30})
			if err != nil {
				t.Fatal(err)
			}
			keyPEM, err := certs.EncodeKey(key)
			if err != nil {
				t.Fatal(err)
			}
			caFile := filepath.Join(dir, "ca.pem")
			if err := os.WriteFile(caFile, append(keyPEM, certs.EncodeCert(ca)...), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(caFile, mode); err != nil {
				t.Fatal(err)
			}
			_, stderr, code := inProcess(t, "", "cert", "--ca-cert", caFile, "--out", filepath.Join(dir, "leaf.pem"))
			if code != cli.ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if warned := strings.Contains(stderr, caFile+" holds a private key and is "+warning); warned != (mode&0o004 != 0) {
				t.Errorf("mode %v: stderr %q", mode, stderr)
			}
		})
	}
}
