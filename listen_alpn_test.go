package tlspin_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tlspin/tlspin/internal/e2e"
)

// TestListenFitsGRPCAndHTTP2: what the package says Listen fits works with
// the ordinary clients of each: gRPC's TLS credentials, which require the
// server to select h2 by ALPN (grpc-go 1.67 and later), and net/http,
// which speaks HTTP/2 when the server offers it.
func TestListenFitsGRPCAndHTTP2(t *testing.T) {
	srv, cli := newIdentity("server"), newIdentity("client")
	v := start(t, []string{"spkipin:pin=" + cli.spki})
	cv := start(t, []string{"spkipin:pin=" + srv.spki})
	clientConfig := func() *tls.Config {
		cfg := cv.ClientConfig("localhost")
		cfg.Certificates = []tls.Certificate{cli.cert}
		return cfg
	}
	// wantHTTP2 fails t unless the server at addr, which says the
	// protocol of each request, speaks HTTP/2 to net/http's client.
	wantHTTP2 := func(t *testing.T, addr string) {
		t.Helper()
		tr := &http.Transport{TLSClientConfig: clientConfig(), ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		got, err := get(&http.Client{Transport: tr}, "https://"+addr+"/")
		if err != nil || got != "200 OK HTTP/2.0" {
			t.Errorf("got %q, %v; want 200 OK HTTP/2.0", got, err)
		}
	}
	t.Run("gRPC", func(t *testing.T) {
		ln, err := v.Listen("tcp", "127.0.0.1:0", srv.cert)
		if err != nil {
			t.Fatal(err)
		}
		gs := grpc.NewServer(grpc.Creds(insecure.NewCredentials())) // Listen did TLS
		healthpb.RegisterHealthServer(gs, health.NewServer())
		go gs.Serve(ln)
		defer gs.Stop()
		conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(clientConfig())))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health check over Listen: %v %v", resp.GetStatus(), err)
		}
	})
	t.Run("HTTP/2", func(t *testing.T) {
		ln, err := v.Listen("tcp", "127.0.0.1:0", srv.cert)
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Proto)) })}
		go hs.Serve(ln)
		defer hs.Close()
		wantHTTP2(t, ln.Addr().String())
	})
	// ServeTLS adds h2 to its TLSConfig after ServerConfig made it: the
	// configuration chosen per client must see it (a copy made at
	// ServerConfig did not, and served HTTP/1.1 only).
	t.Run("HTTP/2 through ServeTLS", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{TLSConfig: v.ServerConfig(srv.cert), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Proto)) })}
		go hs.ServeTLS(ln, "", "")
		defer hs.Close()
		wantHTTP2(t, ln.Addr().String())
	})
}

// TestListenALPNOnlyWhenOffered: Listen selects h2 or http/1.1 from a
// client that offers them, and a client that offers only other protocols
// (PostgreSQL's direct TLS offers "postgresql") still completes its
// handshake, with no protocol selected, as it did before Listen selected
// any: crypto/tls would otherwise fail it with no_application_protocol.
func TestListenALPNOnlyWhenOffered(t *testing.T) {
	srv, cli := newIdentity("server"), newIdentity("client")
	v := start(t, []string{"spkipin:pin=" + cli.spki})
	cv := start(t, []string{"spkipin:pin=" + srv.spki})
	ln, err := v.Listen("tcp", "127.0.0.1:0", srv.cert)
	if err != nil {
		t.Fatal(err)
	}
	addr := e2e.Serve(t, ln, func(net.Conn) {}) // Serve closes each
	tests := []struct {
		offer []string
		want  string
	}{
		{nil, ""},
		{[]string{"h2", "http/1.1"}, "h2"},
		{[]string{"http/1.1"}, "http/1.1"},
		{[]string{"postgresql"}, ""},
		{[]string{"imap", "http/1.1"}, "http/1.1"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.offer), func(t *testing.T) {
			cfg := cv.ClientConfig("localhost")
			cfg.Certificates = []tls.Certificate{cli.cert}
			cfg.NextProtos = tt.offer
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatalf("handshake offering %q: %v", tt.offer, err)
			}
			defer c.Close()
			if got := c.ConnectionState().NegotiatedProtocol; got != tt.want {
				t.Errorf("selected %q; want %q", got, tt.want)
			}
		})
	}
}
