// Package vtest is what the built-in verifiers' tests share: starting a
// built-in through the real plugin path (a separate tlspin process over
// gRPC), capturing what it logs, and making the certificates of rotation
// scenarios (renewal with the same key, a new key, a CA and its leaves).
package vtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// Logs collects what a plugin logs, through the host's logger.
type Logs struct {
	t   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write records and echoes to the test log.
func (l *Logs) Write(b []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(b)
	l.mu.Unlock()
	l.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// String returns everything logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// WaitFor polls until the logs contain s, for at most d.
func (l *Logs) WaitFor(d time.Duration, s string) bool {
	return wait.Until(d, func() bool { return strings.Contains(l.String(), s) })
}

// Options tune Start.
type Options struct {
	// Env is the plugin's whole environment (default: none).
	Env []string
}

// Start launches built-in verifier name as its own process, configured
// with opts, and stops it when the test ends.
func Start(t testing.TB, name string, opts verify.Options, o ...Options) (*host.Plugin, *Logs) {
	t.Helper()
	p, logs, err := TryStart(t, name, opts, o...)
	if err != nil {
		t.Fatalf("starting %s with %v: %v", name, opts, err)
	}
	return p, logs
}

// TryStart is Start returning the start error.
func TryStart(t testing.TB, name string, opts verify.Options, o ...Options) (*host.Plugin, *Logs, error) {
	t.Helper()
	self := testbin.Tlspin(t)
	f := &host.Finder{Builtins: []string{name}, Self: self, SelfArgs: func(n string) []string { return []string{"__verifier", n} }}
	found, err := f.Find(name)
	if err != nil {
		t.Fatal(err)
	}
	logs := &Logs{t: t}
	cfg := host.Config{
		Logger:        hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}),
		VerifyTimeout: 10 * time.Second,
		StartTimeout:  20 * time.Second,
		Env:           []string{"TLSPIN_LOG_LEVEL=info"},
	}
	if len(o) > 0 {
		cfg.Env = append(cfg.Env, o[0].Env...)
	}
	p, err := host.Start(context.Background(), found.Spec(opts), cfg)
	if err != nil {
		return nil, logs, err
	}
	t.Cleanup(func() { p.Close() })
	return p, logs, nil
}

// Verify asks v about chain and fails the test on an error.
func Verify(t testing.TB, v verify.Verifier, req *verify.Request) *verify.Verdict {
	t.Helper()
	if req.Side == verify.SideUnspecified {
		req.Side = verify.ClientVerifiesServer
	}
	verdict, err := v.Verify(context.Background(), req)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return verdict
}

// Handshake is Verify followed, as after a successful handshake, by the
// commit the verdict asks for.
func Handshake(t testing.TB, v verify.Verifier, req *verify.Request) *verify.Verdict {
	t.Helper()
	verdict := Verify(t, v, req)
	if c, ok := v.(verify.Committer); ok && verdict.Allow && verdict.Commit {
		if _, err := c.Commit(context.Background(), req); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	return verdict
}

// Cert is a certificate and its key.
type Cert struct {
	Key  crypto.Signer
	Cert *x509.Certificate
}

// DER returns the certificate's DER.
func (c *Cert) DER() []byte { return c.Cert.Raw }

// PEM returns the certificate's PEM.
func (c *Cert) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// Pin returns the certificate's digest under algo in format f.
func (c *Cert) Pin(t testing.TB, algo pin.Algo, f pin.Format) string {
	t.Helper()
	d, err := pin.Sum(algo, c.Cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	s, err := pin.Print(algo, d, f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Spec describes a certificate to make.
type Spec struct {
	CN   string
	SANs []string
	// Key is reused when set (a renewal); else a new P-256 key is made.
	Key crypto.Signer
	// Issuer signs the certificate; nil: self-signed.
	Issuer *Cert
	IsCA   bool
	// NotBefore and NotAfter default to a minute ago and a year on.
	NotBefore, NotAfter time.Time
	// EKU defaults to server and client authentication.
	EKU []x509.ExtKeyUsage
}

// New makes a certificate.
func New(t testing.TB, s Spec) *Cert {
	t.Helper()
	key := s.Key
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	nb, na := s.NotBefore, s.NotAfter
	if nb.IsZero() {
		nb = time.Now().Add(-time.Minute)
	}
	if na.IsZero() {
		na = nb.AddDate(1, 0, 0)
	}
	eku := s.EKU
	if eku == nil {
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: s.CN},
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		IsCA:                  s.IsCA,
	}
	if s.IsCA {
		tpl.KeyUsage |= x509.KeyUsageCertSign
		tpl.ExtKeyUsage = nil
	}
	for _, san := range s.SANs {
		if ip := net.ParseIP(san); ip != nil {
			tpl.IPAddresses = append(tpl.IPAddresses, ip)
		} else {
			tpl.DNSNames = append(tpl.DNSNames, san)
		}
	}
	parent, signer := tpl, key
	if s.Issuer != nil {
		parent, signer = s.Issuer.Cert, s.Issuer.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Cert{Key: key, Cert: c}
}

// Renew returns a new certificate for c's key and subject (a renewal).
func (c *Cert) Renew(t testing.TB, issuer *Cert) *Cert {
	t.Helper()
	var sans []string
	sans = append(sans, c.Cert.DNSNames...)
	for _, ip := range c.Cert.IPAddresses {
		sans = append(sans, ip.String())
	}
	return New(t, Spec{CN: c.Cert.Subject.CommonName, SANs: sans, Key: c.Key, Issuer: issuer})
}

// WriteFile writes data to path or fails the test.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Chain returns the DER chain of certs, leaf first.
func Chain(certs ...*Cert) [][]byte {
	out := make([][]byte, len(certs))
	for i, c := range certs {
		out[i] = c.DER()
	}
	return out
}
