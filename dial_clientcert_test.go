package tlspin_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
)

// TestDialPresentsAClientCertificate: a library client reaches a library
// server that requires client certificates (mutual TLS) when it is
// started WithClientCertificate; Dial could present none, so every such
// server refused it. Without the option, or with a certificate the
// server does not pin, the server refuses it: in TLS 1.3 the client's
// handshake completes first, and the refusal comes at the first Read.
func TestDialPresentsAClientCertificate(t *testing.T) {
	srv, client, other := newIdentity("server"), newIdentity("client"), newIdentity("other")
	sv := start(t, []string{"spkipin:pin=" + client.spki})
	ln, err := sv.Listen("tcp", "127.0.0.1:0", srv.cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "hello")
			}()
		}
	}()
	for _, tt := range []struct {
		name string
		opts []tlspin.Option
		ok   bool
	}{
		{"pinned certificate", []tlspin.Option{tlspin.WithClientCertificate(client.cert)}, true},
		{"no certificate", nil, false},
		{"another certificate", []tlspin.Option{tlspin.WithClientCertificate(other.cert)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cv := start(t, []string{"spkipin:pin=" + srv.spki}, tt.opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := cv.Dial(ctx, "tcp", ln.Addr().String())
			if err == nil {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				var b []byte
				b, err = io.ReadAll(c)
				if err == nil && string(b) != "hello" {
					t.Fatalf("read %q", b)
				}
			}
			if tt.ok != (err == nil) {
				t.Fatalf("Dial and Read: %v, want success %v", err, tt.ok)
			}
		})
	}
}

// TestWithClientCertificateRefusesAnIncompleteOne: a certificate Dial
// could not present is refused by StartWith, as Listen refuses one.
func TestWithClientCertificateRefusesAnIncompleteOne(t *testing.T) {
	id := newIdentity("client")
	for _, tt := range []struct {
		name string
		cert tls.Certificate
		says string
	}{
		{"zero value", tls.Certificate{}, "no certificate"},
		{"no private key", tls.Certificate{Certificate: id.cert.Certificate}, "no private key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tlspin.StartWith(context.Background(), []string{"spkipin:pin=" + id.spki}, tlspin.WithClientCertificate(tt.cert))
			if err == nil {
				v.Close()
				t.Fatal("started")
			}
			if !errors.Is(err, tlspin.ErrBadConfig) || !strings.Contains(err.Error(), "WithClientCertificate") || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("err = %v; want ErrBadConfig naming WithClientCertificate, saying %q", err, tt.says)
			}
		})
	}
}

// TestDialShowsItsCertificateOnlyToAllowedServers: the certificate of
// WithClientCertificate goes only to a server the verifiers allowed, over
// TLS 1.2 (where it travels in clear) and 1.3, also when the server's
// request names certificate authorities that did not issue it.
func TestDialShowsItsCertificateOnlyToAllowedServers(t *testing.T) {
	srv, client := newIdentity("server"), newIdentity("client")
	for _, vers := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, tt := range []struct {
			pin  string
			sees bool
		}{{srv.spki, true}, {newIdentity("other").spki, false}} {
			t.Run(tls.VersionName(vers)+"/"+map[bool]string{true: "allowed", false: "rejected"}[tt.sees], func(t *testing.T) {
				seen := make(chan int, 1)
				pool := x509.NewCertPool()
				pool.AddCert(newIdentity("some CA").cert.Leaf) // named in the request
				cfg := &tls.Config{
					Certificates: []tls.Certificate{srv.cert},
					MaxVersion:   vers,
					ClientAuth:   tls.RequireAnyClientCert,
					ClientCAs:    pool,
					VerifyConnection: func(cs tls.ConnectionState) error {
						seen <- len(cs.PeerCertificates)
						return nil
					},
				}
				ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				done := make(chan struct{})
				go func() {
					defer close(done)
					c, err := ln.Accept()
					if err != nil {
						return
					}
					defer c.Close()
					c.SetDeadline(time.Now().Add(10 * time.Second))
					if c.(*tls.Conn).Handshake() == nil {
						io.WriteString(c, "hello")
					}
				}()
				cv := start(t, []string{"spkipin:pin=" + tt.pin}, tlspin.WithClientCertificate(client.cert))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, err := cv.Dial(ctx, "tcp", ln.Addr().String())
				if err == nil {
					c.SetDeadline(time.Now().Add(10 * time.Second))
					_, err = io.ReadAll(c)
					c.Close()
				}
				if tt.sees {
					if err != nil {
						t.Fatalf("Dial: %v", err)
					}
					<-done
					select {
					case n := <-seen:
						if n != 1 {
							t.Errorf("the server got %d certificates, want the client's", n)
						}
					default:
						t.Error("the server verified no client")
					}
					return
				}
				<-done // the server's handshake has ended
				if !errors.Is(err, tlspin.ErrRejected) {
					t.Errorf("Dial: %v, want ErrRejected", err)
				}
				select {
				case n := <-seen:
					t.Errorf("ATTACK: a server the verifiers rejected got %d client certificates", n)
				default:
				}
			})
		}
	}
}
