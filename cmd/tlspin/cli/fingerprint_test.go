package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/core/certs"
)

// inProcess runs tlspin in this process (for commands that start no
// plugin) with stdin, and returns stdout, stderr and the exit code.
func inProcess(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := cli.Env{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	code := cli.RunContext(context.Background(), env, args)
	return stdout.String(), stderr.String(), code
}

// startOpenSSLServer runs openssl s_server on an ephemeral loopback port
// with extra arguments and returns its address.
func startOpenSSLServer(t *testing.T, certFile string, extra ...string) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	args := append([]string{"s_server", "-accept", "127.0.0.1:0", "-cert", certFile, "-key", certFile}, extra...)
	cmd := exec.Command("openssl", args...)
	// s_server stops at the end of its stdin: give it one that stays open.
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ACCEPT "); ok {
				addr <- a
				break
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(20 * time.Second):
		t.Fatal("openssl s_server did not print its address within 20s")
	}
	return ""
}

func writeSelfSigned(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "needs-client-cert", SANs: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := certs.EncodeKey(key)
	p := filepath.Join(dir, "server.pem")
	if err := os.WriteFile(p, append(keyPEM, certs.EncodeCert(c)...), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, c.Raw
}

// TestFingerprintServerRequiringClientCert: a TLS 1.2 server that demands
// a client certificate ends the handshake after sending its own; the
// fingerprint is still printed, and stderr says the handshake failed.
func TestFingerprintServerRequiringClientCert(t *testing.T) {
	certFile, der := writeSelfSigned(t, t.TempDir())
	addr := startOpenSSLServer(t, certFile, "-tls1_2", "-Verify", "1")
	stdout, stderr, code := inProcess(t, "", "fingerprint", "--algo", "sha256", addr)
	sum := sha256.Sum256(der)
	if code != cli.ExitOK || strings.TrimSpace(stdout) != hex.EncodeToString(sum[:]) {
		t.Fatalf("exit %d, stdout %q, want %x; stderr %s", code, stdout, sum, stderr)
	}
	if !strings.Contains(stderr, "TLS handshake failed after the server sent its certificate") {
		t.Errorf("stderr does not say the handshake failed: %s", stderr)
	}
}

// TestFingerprintKeysAndCSRs: the spki pin of a certificate can be
// computed from its public key, its private key or a CSR for the key,
// from a file or standard input, and equals what openssl computes the
// way curl's documentation does.
func TestFingerprintKeysAndCSRs(t *testing.T) {
	dir := t.TempDir()
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.RSA, CommonName: "backup"})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := certs.EncodeKey(key)
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "next.example"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecSPKI, _ := x509.MarshalPKIXPublicKey(ecKey.Public())
	ecSum := sha256.Sum256(ecSPKI)
	files := map[string][]byte{
		"cert.pem":      certs.EncodeCert(c),
		"key.pem":       keyPEM,
		"key.pkcs8.der": pkcs8,
		"key.pkcs1.der": x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey)),
		"ec.sec1.der":   sec1,
		"pub.pem":       pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}),
		"pub.der":       spki,
		"rsapub.pem":    pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(key.Public().(*rsa.PublicKey))}),
		"csr.pem":       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}),
		"csr.der":       csr,
		"nothing.pem":   []byte("-----BEGIN NOTHING-----\nAAAA\n-----END NOTHING-----\n"),
		"encrypted.pem": []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want, _, _ := inProcess(t, "", "fingerprint", "--algo", "spki", filepath.Join(dir, "cert.pem"))
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	if strings.TrimSpace(want) != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("spki of the certificate = %q", want)
	}
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string // stdout, or with code != 0 a part of stderr
		code  int
	}{
		{"private key", []string{"key.pem"}, "", want, 0},
		// openssl pkey -outform DER writes PKCS#1 for RSA, SEC 1 for EC.
		{"private key DER, PKCS#8", []string{"key.pkcs8.der"}, "", want, 0},
		{"private key DER, PKCS#1", []string{"key.pkcs1.der"}, "", want, 0},
		{"private key DER, SEC 1", []string{"ec.sec1.der"}, "", base64.StdEncoding.EncodeToString(ecSum[:]) + "\n", 0},
		{"public key", []string{"pub.pem"}, "", want, 0},
		{"public key DER", []string{"pub.der"}, "", want, 0},
		{"PKCS#1 public key", []string{"rsapub.pem"}, "", want, 0},
		{"CSR", []string{"csr.pem"}, "", want, 0},
		{"CSR DER", []string{"csr.der"}, "", want, 0},
		{"CSR on stdin", []string{"-"}, string(files["csr.pem"]), want, 0},
		{"certificate on stdin", []string{"--algo", "spki", "-"}, string(files["cert.pem"]), want, 0},
		{"curl format implies spki", []string{"--format", "curl", "cert.pem"}, "", "sha256//" + strings.TrimSpace(want) + "\n", 0},
		{"hpkp format implies spki", []string{"--format", "hpkp", "pub.pem"}, "", `pin-sha256="` + strings.TrimSpace(want) + "\"\n", 0},
		{"certificate defaults to sha256", []string{"cert.pem"}, "", hexSum(c.Raw) + "\n", 0},
		{"md5 of a key", []string{"--algo", "md5", "key.pem"}, "", "holds a private key, which has no md5 fingerprint", cli.ExitUsage},
		{"curl with md5", []string{"--algo", "md5", "--format", "curl", "cert.pem"}, "", "use --algo spki", cli.ExitUsage},
		{"nothing", []string{"nothing.pem"}, "", "no certificate, certificate request, public key or private key found", cli.ExitUsage},
		{"encrypted", []string{"encrypted.pem"}, "", "the private key is encrypted", cli.ExitUsage},
		{"empty stdin", []string{"-"}, "", "standard input", cli.ExitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"fingerprint"}
			for _, a := range tc.args {
				if _, ok := files[a]; ok {
					a = filepath.Join(dir, a)
				}
				args = append(args, a)
			}
			stdout, stderr, code := inProcess(t, tc.stdin, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tc.code, stderr)
			}
			if code == 0 && stdout != tc.want {
				t.Errorf("stdout %q, want %q", stdout, tc.want)
			}
			if code != 0 && !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q lacks %q", stderr, tc.want)
			}
		})
	}

	// The same pin as curl's documented recipe computes with openssl.
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	cmd := exec.Command("sh", "-c", "openssl pkey -in key.pem -pubout -outform DER | openssl dgst -sha256 -binary | openssl enc -base64")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil || string(out) != want {
		t.Fatalf("openssl computes %q (%v), tlspin %q", out, err, want)
	}
}

func hexSum(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// A collision-broken digest is printed, alone on stdout as the recipe's
// pipeline needs, with a warning on stderr that --log-level error silences.
func TestFingerprintWarnsOfWeakDigests(t *testing.T) {
	p, der := writeSelfSigned(t, t.TempDir())
	tests := []struct {
		args []string
		want string // the digest printed
		warn string // "" for no warning
	}{
		{[]string{"--algo", "md5"}, hex.EncodeToString(md5Sum(der)), "MD5 is collision-broken: a pin made with it is weak; prefer --algo spki"},
		{[]string{"--algo", "sha1"}, hex.EncodeToString(sha1Sum(der)), "SHA1 is collision-broken"},
		{[]string{"--algo", "sha256"}, hex.EncodeToString(sha256Sum(der)), ""},
		{[]string{"--algo", "md5", "--log-level", "error"}, hex.EncodeToString(md5Sum(der)), ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, code := inProcess(t, "", append(append([]string{"fingerprint"}, tt.args...), p)...)
			if code != cli.ExitOK || stdout != tt.want+"\n" {
				t.Fatalf("exit %d, stdout %q; want 0 and %q", code, stdout, tt.want)
			}
			if tt.warn == "" && stderr != "" || tt.warn != "" && (!strings.Contains(stderr, "[WARN]") || !strings.Contains(stderr, tt.warn)) {
				t.Errorf("stderr %q; want the warning %q", stderr, tt.warn)
			}
		})
	}
}

func md5Sum(b []byte) []byte    { s := md5.Sum(b); return s[:] }
func sha1Sum(b []byte) []byte   { s := sha1.Sum(b); return s[:] }
func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
