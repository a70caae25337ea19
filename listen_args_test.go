package tlspin_test

import (
	"crypto/tls"
	"strings"
	"testing"
)

// TestListenRefusesAnIncompleteCertificate: Listen given a certificate it
// cannot present fails at once, saying so, rather than listen and fail
// every handshake ("handshake failure" on the client's side).
func TestListenRefusesAnIncompleteCertificate(t *testing.T) {
	srv := newIdentity("server")
	v := start(t, []string{"spkipin:pin=" + srv.spki})
	tests := []struct {
		name string
		cert tls.Certificate
		says string
	}{
		{"zero value", tls.Certificate{}, "no certificate"},
		{"no private key", tls.Certificate{Certificate: srv.cert.Certificate}, "no private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := v.Listen("tcp", "127.0.0.1:0", tt.cert)
			if err == nil {
				ln.Close()
				t.Fatal("Listen accepted it")
			}
			if !strings.HasPrefix(err.Error(), "tlspin: listen") || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("err = %v; want tlspin: listen ...: %s", err, tt.says)
			}
		})
	}
}
