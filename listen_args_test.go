package tlspin_test

import (
	"context"
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

// TestDialRefusesNetworksOtherThanTCP: Dial speaks TLS over TCP only; any
// other network is refused by name before anything is sent, rather than a
// handshake tried over UDP or a unix path taken for a bad HOST:PORT.
func TestDialRefusesNetworksOtherThanTCP(t *testing.T) {
	srv := newIdentity("server")
	addr := tlsServer(t, srv)
	v := start(t, []string{"spkipin:pin=" + srv.spki})
	for _, network := range []string{"udp", "unix", "ip4", ""} {
		t.Run(network, func(t *testing.T) {
			c, err := v.Dial(context.Background(), network, addr)
			if err == nil {
				c.Close()
				t.Fatal("Dial connected")
			}
			if !strings.HasPrefix(err.Error(), "tlspin: dial") || !strings.Contains(err.Error(), `network "`+network+`"`) {
				t.Errorf("err = %v; want tlspin: dial ...: network %q ...", err, network)
			}
		})
	}
	c, err := v.Dial(context.Background(), "tcp4", addr)
	if err != nil {
		t.Fatalf("tcp4: %v", err)
	}
	c.Close()
}
