package pin_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/pin"
)

// need returns the path of tool, skipping the test when it is not
// installed (CI installs it).
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s not installed", tool)
	}
	return p
}

func run(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// TestFingerprintsMatchOpenSSL computes every algorithm's fingerprint of
// certificates of every key type with openssl, and checks that tlspin
// prints the same thing in every format and parses openssl's output.
func TestFingerprintsMatchOpenSSL(t *testing.T) {
	openssl := need(t, "openssl")
	for _, kt := range []certs.KeyType{certs.RSA, certs.ECDSA, certs.Ed25519} {
		t.Run(string(kt), func(t *testing.T) {
			c := newCert(t, kt)
			certPEM := certs.EncodeCert(c)
			for _, a := range []pin.Algo{pin.MD5, pin.SHA1, pin.SHA256} {
				line := strings.TrimSpace(string(run(t, certPEM, openssl, "x509", "-noout", "-fingerprint", "-"+string(a))))
				d, err := pin.Sum(a, c.Raw)
				if err != nil {
					t.Fatal(err)
				}
				got, err := pin.Print(a, d, pin.FormatOpenSSL)
				if err != nil || got != line {
					t.Errorf("%s: Print(openssl) = %q, %v; openssl printed %q", a, got, err, line)
				}
				_, value, _ := strings.Cut(line, "=")
				if got, _ := pin.Print(a, d, pin.FormatColon); got != value {
					t.Errorf("%s: Print(colon) = %q; openssl printed %q", a, got, value)
				}
				if got, _ := pin.Print(a, d, pin.FormatHex); got != strings.ToLower(strings.ReplaceAll(value, ":", "")) {
					t.Errorf("%s: Print(hex) = %q; openssl printed %q", a, got, value)
				}
				// openssl's own dgst of the DER, in hex and base64.
				der := run(t, certPEM, openssl, "x509", "-outform", "DER")
				raw := run(t, der, openssl, "dgst", "-"+string(a), "-binary")
				if got, _ := pin.Print(a, d, pin.FormatBase64); got != base64.StdEncoding.EncodeToString(raw) {
					t.Errorf("%s: Print(base64) = %q; openssl dgst gives %q", a, got, base64.StdEncoding.EncodeToString(raw))
				}
				for _, in := range []string{line, value, hex.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw)} {
					p, err := pin.Parse(a, in)
					if err != nil || !p.Equal(d) {
						t.Errorf("%s: Parse(%q) = %v, %v; want %x", a, in, p, err, d)
					}
				}
			}

			// SPKI: openssl x509 -pubkey | openssl pkey -pubin -outform DER
			// | openssl dgst -sha256 -binary | base64.
			pubPEM := run(t, certPEM, openssl, "x509", "-noout", "-pubkey")
			pubDER := run(t, pubPEM, openssl, "pkey", "-pubin", "-outform", "DER")
			raw := run(t, pubDER, openssl, "dgst", "-sha256", "-binary")
			b64 := strings.TrimSpace(string(run(t, raw, openssl, "base64")))
			d, err := pin.Sum(pin.SPKI, c.Raw)
			if err != nil {
				t.Fatal(err)
			}
			want := map[pin.Format]string{
				pin.FormatHex:    hex.EncodeToString(raw),
				pin.FormatColon:  strings.ToUpper(colon(raw)),
				pin.FormatBase64: b64,
				pin.FormatCurl:   "sha256//" + b64,
				pin.FormatOkHttp: "sha256/" + b64,
				pin.FormatHPKP:   `pin-sha256="` + b64 + `"`,
			}
			for f, w := range want {
				got, err := pin.Print(pin.SPKI, d, f)
				if err != nil || got != w {
					t.Errorf("spki: Print(%s) = %q, %v; openssl gives %q", f, got, err, w)
				}
				p, err := pin.Parse(pin.SPKI, w)
				if err != nil || !p.Equal(d) {
					t.Errorf("spki: Parse(%q) = %v, %v", w, p, err)
				}
			}
			if p, err := pin.Parse(pin.SPKI, "sha256:"+b64); err != nil || !p.Equal(d) {
				t.Errorf("spki: Parse(ghostunnel sha256:%s) = %v, %v", b64, p, err)
			}
		})
	}
}

// TestCurlPinnedPubKey checks the curl format against real curl: a pin
// printed with FormatCurl is accepted by `curl --pinnedpubkey`, and a wrong
// one makes curl exit 90 (CURLE_SSL_PINNEDPUBKEYNOTMATCH).
func TestCurlPinnedPubKey(t *testing.T) {
	curl := need(t, "curl")
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "localhost", SANs: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveHTTP(ln)

	d, _ := pin.Sum(pin.SPKI, c.Raw)
	good, _ := pin.Print(pin.SPKI, d, pin.FormatCurl)
	other, _ := pin.Sum(pin.SPKI, newCert(t, certs.ECDSA).Raw)
	bad, _ := pin.Print(pin.SPKI, other, pin.FormatCurl)
	url := "https://" + ln.Addr().String() + "/"
	tests := []struct {
		name     string
		pinned   string
		wantCode int
	}{
		{"right pin", good, 0},
		{"backup list with the right pin second", bad + ";" + good, 0},
		{"wrong pin", bad, 90},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// -k: the certificate is self-signed; the pin is the only check.
			out, err := exec.CommandContext(ctx, curl, "-sS", "-k", "--max-time", "10", "--pinnedpubkey", tt.pinned, url).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Fatalf("curl --pinnedpubkey %q: exit %d, want %d\n%s", tt.pinned, code, tt.wantCode, out)
			}
		})
	}

	// And a pin file in DER, as curl also accepts, has the same SPKI.
	pubFile := filepath.Join(t.TempDir(), "pub.der")
	if err := os.WriteFile(pubFile, c.RawSubjectPublicKeyInfo, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(curl, "-sS", "-k", "--max-time", "10", "--pinnedpubkey", pubFile, url).CombinedOutput(); err != nil {
		t.Fatalf("curl with the DER public key: %v\n%s", err, out)
	}
}

// serveHTTP answers every connection with a minimal HTTP response.
func serveHTTP(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 4096)
			if _, err := conn.Read(buf); err != nil {
				return
			}
			fmt.Fprint(conn, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
		}()
	}
}
