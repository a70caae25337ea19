// Package sdktest is a test harness for verifier plugin authors. It serves
// a verifier in-process over real gRPC (HTTP/2 on an in-memory
// connection), through the same go-plugin plugin, dial options and
// protobuf conversion as a plugin process, and makes the certificates to
// feed it:
//
//	func TestMyVerifier(t *testing.T) {
//		c := sdktest.Start(t, &myVerifier{}, verify.Options{"san": {"*.example.com"}})
//		good := sdktest.SelfSigned(t, certs.Template{SANs: []string{"api.example.com"}})
//		if v := c.Check(t, good); !v.Allow {
//			t.Fatalf("rejected: %s", v.Reason)
//		}
//	}
//
// What passes here passes through a real host, except for process
// concerns (start timeout, stdout discipline, crashes), which core/host
// tests cover.
package sdktest

import (
	"context"
	"crypto"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/core/verify"
)

// Client is the host's view of a verifier served by Serve or Start: every
// call crosses gRPC and the wire-format conversion.
type Client struct {
	*rpc.Client
}

var _ verify.Verifier = (*Client)(nil)

// Serve serves v over in-process gRPC and returns a client for it,
// unconfigured. Everything is shut down when the test ends.
func Serve(t testing.TB, v verify.Verifier) *Client {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	if err := (&rpc.GRPCPlugin{Impl: v}).GRPCServer(nil, srv); err != nil {
		t.Fatalf("sdktest: register: %v", err)
	}
	go func() { _ = srv.Serve(lis) }()
	opts := append(rpc.DialOptions(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	conn, err := grpc.NewClient("passthrough:///sdktest", opts...)
	if err != nil {
		t.Fatalf("sdktest: dial: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
	})
	raw, err := (&rpc.GRPCPlugin{}).GRPCClient(context.Background(), nil, conn)
	if err != nil {
		t.Fatalf("sdktest: client: %v", err)
	}
	c, ok := raw.(*rpc.Client)
	if !ok {
		t.Fatalf("sdktest: client is %T, want *rpc.Client", raw)
	}
	return &Client{Client: c}
}

// Start is Serve followed by Describe and Configure with opts, as the host
// does after launching a plugin; it fails the test if either fails.
func Start(t testing.TB, v verify.Verifier, opts verify.Options) *Client {
	t.Helper()
	c := Serve(t, v)
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if _, err := c.Describe(ctx); err != nil {
		t.Fatalf("sdktest: Describe: %v", err)
	}
	if _, err := c.Configure(ctx, &verify.ConfigureRequest{Options: opts}); err != nil {
		t.Fatalf("sdktest: Configure(%v): %v", opts, err)
	}
	return c
}

// callTimeout bounds each call the harness makes, like the host's default
// verify timeout.
const callTimeout = 5 * time.Second

// Check asks the verifier about a server presenting chain (leaf first), as
// a tlspin client would, and fails the test if the call itself fails. A
// rejection is a verdict with Allow false, not a failure.
func (c *Client) Check(t testing.TB, chain ...*Cert) *verify.Verdict {
	t.Helper()
	v, err := c.CheckRequest(Request(chain...))
	if err != nil {
		t.Fatalf("sdktest: Verify: %v", err)
	}
	return v
}

// CheckRequest sends req with the host's default verify timeout.
func (c *Client) CheckRequest(req *verify.Request) (*verify.Verdict, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return c.Verify(ctx, req)
}

// Request returns the request a tlspin client makes for a server that
// presented chain (leaf first): side client-verifies-server, TLS 1.3, the
// leaf's first DNS name as the server name.
func Request(chain ...*Cert) *verify.Request {
	req := &verify.Request{Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:443", TLSVersion: 0x0304}
	for _, c := range chain {
		req.PeerChain = append(req.PeerChain, c.Cert.Raw)
	}
	if len(chain) > 0 && len(chain[0].Cert.DNSNames) > 0 {
		req.ServerName = chain[0].Cert.DNSNames[0]
	}
	return req
}

// Cert is a generated certificate with its key and the template it was
// made from, so that it can be renewed or rekeyed.
type Cert struct {
	Key      crypto.Signer
	Cert     *x509.Certificate
	Template certs.Template
}

// SelfSigned makes a key and a self-signed certificate from tpl
// (core/certs rules: ECDSA P-256 when Type is empty here, 365 days).
func SelfSigned(t testing.TB, tpl certs.Template) *Cert {
	t.Helper()
	if tpl.Type == "" {
		tpl.Type = certs.ECDSA
	}
	key, c, err := certs.SelfSigned(tpl)
	if err != nil {
		t.Fatalf("sdktest: self-signed %+v: %v", tpl, err)
	}
	return &Cert{Key: key, Cert: c, Template: tpl}
}

// Renewed returns a new certificate for the same key and names, valid
// from now for days days: what a certificate renewal that keeps the key
// produces (an SPKI pin still matches, a certificate pin does not).
func (c *Cert) Renewed(t testing.TB, days int) *Cert {
	t.Helper()
	tpl := c.Template
	tpl.NotBefore, tpl.Days = time.Time{}, days
	n, err := certs.Issue(tpl, c.Key.Public(), nil, c.Key)
	if err != nil {
		t.Fatalf("sdktest: renew: %v", err)
	}
	return &Cert{Key: c.Key, Cert: n, Template: tpl}
}

// Rekeyed returns a certificate for the same names under a new key: what a
// key rotation produces (neither an SPKI pin nor a certificate pin
// matches).
func (c *Cert) Rekeyed(t testing.TB) *Cert {
	t.Helper()
	tpl := c.Template
	tpl.NotBefore = time.Time{}
	return SelfSigned(t, tpl)
}

// Issued returns a certificate for tpl signed by c, which must be a CA
// (made with Template.IsCA): for chain-aware verifiers.
func (c *Cert) Issued(t testing.TB, tpl certs.Template) *Cert {
	t.Helper()
	if tpl.Type == "" {
		tpl.Type = certs.ECDSA
	}
	key, err := certs.GenerateKey(tpl.Type, tpl.Bits)
	if err != nil {
		t.Fatalf("sdktest: key: %v", err)
	}
	n, err := certs.Issue(tpl, key.Public(), c.Cert, c.Key)
	if err != nil {
		t.Fatalf("sdktest: issue %+v: %v", tpl, err)
	}
	return &Cert{Key: key, Cert: n, Template: tpl}
}
