package tlspin_test

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/testbin"
)

// TestMain lets this test binary serve the built-in verifiers, as the
// package documentation tells every program to. Built with -race, the
// binary would sleep a second at exit (the race detector's
// atexit_sleep_ms), so the plugins it serves would outlast the host's
// grace period after Shutdown and be killed, a second per Close: start
// passes them a GORACE that says not to.
func TestMain(m *testing.M) {
	tlspin.ServeBuiltin()
	if _, ok := os.LookupEnv("GORACE"); !ok {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	testbin.Main(m)
}

// identity is a certificate with its key and its pins.
type identity struct {
	cert tls.Certificate
	md5  string // hex MD5 of the certificate, as md5pin takes it
	sha  string // hex SHA-256 of the certificate
	spki string // sha256//BASE64 of the public key, as spkipin takes it
}

// newIdentity makes a self-signed ECDSA certificate for localhost and
// 127.0.0.1, as `tlspin cert` does.
func newIdentity(cn string) identity {
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: cn, SANs: []string{"localhost", "127.0.0.1"}, Days: 1})
	if err != nil {
		panic(err)
	}
	m := md5.Sum(c.Raw)
	s := sha256.Sum256(c.Raw)
	p := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return identity{
		cert: tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c},
		md5:  hex.EncodeToString(m[:]),
		sha:  hex.EncodeToString(s[:]),
		spki: "sha256//" + base64.StdEncoding.EncodeToString(p[:]),
	}
}

// httpsServer serves "hello" over HTTPS on loopback with id's certificate.
func httpsServer(id identity) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{id.cert}}
	srv.StartTLS()
	return srv
}

// localhostURL rewrites a httptest URL (127.0.0.1:PORT) to localhost:PORT.
func localhostURL(srv *httptest.Server) string {
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return "https://localhost:" + port
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return fmt.Sprintf("%s %s", resp.Status, b), err
}

func fatalIf(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// tempDir makes a directory for an example; examples have no t.TempDir.
func tempDir() string {
	d, err := os.MkdirTemp("", "tlspin-example-")
	fatalIf(err)
	return d
}
