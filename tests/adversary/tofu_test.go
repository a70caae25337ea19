package adversary

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/wait"
)

// wrongKey returns id's certificate paired with a key that is not its own:
// what an attacker who copied a public certificate can present. The
// handshake then fails on the peer's signature, which crypto/tls checks
// only after VerifyConnection has run.
func wrongKey(t *testing.T, id e2e.Identity) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: id.Cert.Certificate, PrivateKey: k}
}

// goServer serves TLS with cert on loopback until the test ends, reading
// what each client sends; it returns its address.
func goServer(t *testing.T, cert tls.Certificate, maxVersion uint16) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: maxVersion})
	if err != nil {
		t.Fatal(err)
	}
	return e2e.Serve(t, ln, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c)
	})
}

func recorded(t *testing.T, file string, id e2e.Identity) bool {
	t.Helper()
	data, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(data), strings.TrimPrefix(id.SPKI(), "sha256//"))
}

// TestTOFURecordsOnlyProvedKeys: a server presenting the legitimate
// certificate without its key fails the handshake, and must not be
// recorded on first use; the real server is. TLS 1.3 and 1.2 both decide
// before the signature is checked.
func TestTOFURecordsOnlyProvedKeys(t *testing.T) {
	dir := t.TempDir()
	legit := e2e.NewIdentity(t, dir, "legit")
	for _, v := range []struct {
		name string
		max  uint16
	}{{"TLS 1.3", tls.VersionTLS13}, {"TLS 1.2", tls.VersionTLS12}} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			pins := filepath.Join(t.TempDir(), "known_pins")
			addr := goServer(t, wrongKey(t, legit), v.max)
			code, _, stderr := e2e.RunTlspin(t, "send", "--verifier", "tofu:file="+pins, addr, "hello")
			if code == 0 {
				t.Fatalf("send to a server without the certificate's key succeeded:\n%s", stderr)
			}
			if recorded(t, pins, legit) {
				t.Fatalf("the pin was recorded although the server never proved its key:\n%s", stderr)
			}
			addr = goServer(t, legit.Cert, v.max)
			if code, _, stderr := e2e.RunTlspin(t, "send", "--verifier", "tofu:file="+pins, addr, "hello"); code != 0 {
				t.Fatalf("send to the real server exited %d:\n%s", code, stderr)
			}
			if !recorded(t, pins, legit) {
				t.Fatal("the real server was not recorded on first use")
			}
		})
	}
}

// TestTOFUServeRecordsOnlyProvedKeys is the same attack on `tlspin serve`:
// a client presenting a copied certificate without its key.
func TestTOFUServeRecordsOnlyProvedKeys(t *testing.T) {
	dir := t.TempDir()
	srv := e2e.NewIdentity(t, dir, "server")
	legit := e2e.NewIdentity(t, dir, "client")
	pins := filepath.Join(dir, "known_pins")
	s := e2e.StartServe(t, "--cert", srv.File, "--verifier", "tofu:file="+pins)
	dial := func(cert tls.Certificate) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.Addr,
			&tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("line\n")); err != nil {
			return err
		}
		_, err = c.Read(make([]byte, 1)) // the server's alert, or EOF once it closes
		if err == io.EOF {
			return nil
		}
		return err
	}
	dial(wrongKey(t, legit))
	if !wait.Until(5*time.Second, func() bool { return strings.Contains(s.Stderr.String(), "rejected") }) {
		t.Fatalf("serve did not reject the client without its key:\n%s", s.Stderr)
	}
	if recorded(t, pins, legit) {
		t.Fatal("a client that never proved its key was recorded")
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.Addr,
		&tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{legit.Cert}})
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("from the real client\n"))
	c.Close()
	if !wait.Until(5*time.Second, func() bool { return recorded(t, pins, legit) }) {
		t.Fatalf("the real client was not recorded:\n%s", s.Stderr)
	}
}

// TestVerifyRecordsNothing: `tlspin verify` asks a TOFU verifier about a
// certificate file, which proves no key, so it never commits: a first use,
// which tofu allows only by recording it, is a rejection there (exit 3,
// saying why), and nothing is recorded.
func TestVerifyRecordsNothing(t *testing.T) {
	dir := t.TempDir()
	legit := e2e.NewIdentity(t, dir, "legit")
	pins := filepath.Join(dir, "known_pins")
	code, stdout, stderr := e2e.RunTlspin(t, "verify", "--server-name", "localhost", "--verifier", "tofu:file="+pins, legit.File)
	if code != 3 || !strings.Contains(stdout, "verdict: rejected") || !strings.Contains(stdout, "outside a handshake records nothing") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if recorded(t, pins, legit) {
		t.Fatal("tlspin verify recorded the certificate's key")
	}
}
