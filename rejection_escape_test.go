package tlspin_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/e2e"
)

// TestRejectionErrorIsPrintable: a server whose certificate names a host
// with terminal escapes (clear the screen, retitle the window, a carriage
// return and a forged line) gets them into the reason of the verifier
// that rejects it (ca quotes the names a certificate is valid for). The
// error Dial returns is what a program logs: it used to carry them as
// they came, and it must show them escaped, as tlspin's own output does.
func TestRejectionErrorIsPrintable(t *testing.T) {
	const evil = "\x1b[2J\x1b]0;owned\x07\rtlspin: server accepted"
	rootKey, root, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "Test Root", IsCA: true, Days: 1})
	fatalIf(err)
	key, err := certs.GenerateKey(certs.ECDSA, 0)
	fatalIf(err)
	leaf, err := certs.Issue(certs.Template{CommonName: "leaf", SANs: []string{evil}, Days: 1}, key.Public(), root, rootKey)
	fatalIf(err)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	fatalIf(os.WriteFile(caFile, certs.EncodeCert(root), 0o600))
	v := start(t, []string{"ca:ca-file=" + caFile})

	addr := e2e.ServeTLS(t, tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}, func(c *tls.Conn) { io.Copy(io.Discard, c) })
	_, port, _ := net.SplitHostPort(addr)
	_, err = v.Dial(context.Background(), "tcp", net.JoinHostPort("localhost", port))
	var re *tlspin.RejectionError
	if !errors.As(err, &re) {
		t.Fatalf("Dial: %v; want a *RejectionError", err)
	}
	for name, text := range map[string]string{"Error": err.Error(), "Reason": re.Reason()} {
		if i := strings.IndexFunc(text, unicode.IsControl); i >= 0 {
			t.Errorf("%s carries a control character %q at %d: %q", name, text[i], i, text)
		}
		if !strings.Contains(text, `\x1b[2J`) {
			t.Errorf("%s does not show the name escaped: %q", name, text)
		}
	}
}
