package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/server"
)

// noClientCert is crypto/tls's text for a client that sent no certificate.
const noClientCert = "tls: client didn't provide a certificate"

// TestPeerTextDoesNotClassify: crypto/tls's error for a client that sent
// no certificate has no type, and was recognised by its text anywhere in
// the handshake's error. A peer can put that text into the error of a
// handshake that failed otherwise, and so be reported as rejected by us
// for sending no certificate (the warning, the event's "by", the proxy's
// no_certificate outcome), where it failed: as an ALPN protocol it
// offers, which crypto/tls quotes; as the address of its unix socket,
// which a net error on the connection names; in a commit error that
// quotes its certificate. Only crypto/tls's own error counts now.
func TestPeerTextDoesNotClassify(t *testing.T) {
	serverCert := newCert(t, "server")
	clientCert := newCert(t, "client")
	// A name of the peer's choosing, unique on this machine (an abstract
	// unix socket name is), holding crypto/tls's text.
	peerText := noClientCert + " " + strconv.FormatInt(time.Now().UnixNano(), 36)
	peerCert := newCert(t, peerText)
	hello := clientHello(t)
	for _, tt := range []struct {
		name    string
		network string
		alpn    []string // the server's
		confirm server.Confirm
		// peer runs the client's side on c.
		peer   func(c net.Conn)
		from   string // the unix client's own (abstract) address
		by     server.Refusal
		noCert bool
	}{
		{
			name: "no certificate (crypto/tls's own error)", network: "tcp",
			peer: tlsPeer(&tls.Config{InsecureSkipVerify: true}),
			by:   server.RejectedByUs, noCert: true,
		},
		{
			name: "no certificate over TLS 1.2", network: "tcp",
			peer: tlsPeer(&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}),
			by:   server.RejectedByUs, noCert: true,
		},
		{
			name: "an ALPN protocol the client offers", network: "tcp", alpn: []string{"h2"},
			peer: tlsPeer(&tls.Config{InsecureSkipVerify: true, NextProtos: []string{peerText}, Certificates: []tls.Certificate{clientCert}}),
			by:   server.HandshakeFailed,
		},
		{
			name: "the peer's unix socket address in a net error", network: "unix", from: "@" + peerText,
			peer: func(c net.Conn) {
				// A ClientHello, then a close with the server's answer
				// unread: the server's next read (or write) fails with
				// an error naming both ends.
				c.Write(hello)
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				c.Read(make([]byte, 1))
				c.Close()
			},
			by: server.HandshakeFailed,
		},
		{
			name: "a commit error that quotes the peer", network: "tcp",
			confirm: func(ctx context.Context, conn *tls.Conn) error {
				cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
				return fmt.Errorf("pintls: commit: %w", fmt.Errorf("plugin: cannot record %q", cn))
			},
			peer: tlsPeer(&tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{peerCert}}),
			by:   server.HandshakeFailed,
		},
		{
			// Not crypto/tls's, though its very text (a plugin's answer,
			// say, passed on as it came).
			name: "a commit error of that very text", network: "tcp",
			confirm: func(context.Context, *tls.Conn) error { return errors.New(noClientCert) },
			peer:    tlsPeer(&tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{clientCert}}),
			by:      server.HandshakeFailed,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if strings.HasPrefix(tt.from, "@") && runtime.GOOS != "linux" {
				t.Skip("abstract unix socket addresses are Linux's")
			}
			cfg := &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAnyClientCert, NextProtos: tt.alpn}
			errs := make(chan error, 1)
			loop := server.NewLoop(server.HandlerFunc(func(ctx context.Context, c *server.Conn) {
				_, err := c.Handshake(ctx, cfg, tt.confirm)
				errs <- err
			}), server.Limits{GracePeriod: time.Millisecond}, nil)
			addr := "127.0.0.1:0"
			if tt.network == "unix" {
				addr = filepath.Join(t.TempDir(), "s")
			}
			ln, err := net.Listen(tt.network, addr)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- loop.Serve(ctx, ln) }()
			defer func() { cancel(); <-served }()

			d := net.Dialer{Timeout: 10 * time.Second}
			if tt.from != "" {
				d.LocalAddr = &net.UnixAddr{Name: tt.from, Net: "unix"}
			}
			c, err := d.Dial(tt.network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			peerDone := make(chan struct{})
			go func() { defer close(peerDone); tt.peer(c) }()
			defer func() { c.Close(); <-peerDone }()

			select {
			case err = <-errs:
			case <-time.After(20 * time.Second):
				t.Fatal("no handshake result")
			}
			var he *server.HandshakeError
			if !errors.As(err, &he) {
				t.Fatalf("handshake error %v, want a *server.HandshakeError", err)
			}
			if he.By != tt.by || errors.Is(err, server.ErrNoCertificate) != tt.noCert {
				t.Errorf("%q classified as %s (no certificate: %v), want %s (%v); reason %q",
					errors.Unwrap(he), he.By, errors.Is(err, server.ErrNoCertificate), tt.by, tt.noCert, he.Reason)
			}
		})
	}
}

// tlsPeer is a peer that runs a TLS client handshake with cfg, then reads
// until the server closes.
func tlsPeer(cfg *tls.Config) func(net.Conn) {
	return func(c net.Conn) {
		tc := tls.Client(c, cfg)
		if tc.Handshake() == nil {
			io.Copy(io.Discard, tc)
		}
	}
}
