package ca_test

import (
	"context"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/verifiers/ca"
	"github.com/tlspin/tlspin/verifiers/internal/vtest"
)

func TestMain(m *testing.M) { testbin.Main(m) }

type fixture struct {
	caFile, otherCAFile                               string
	root, inter, leaf, ipLeaf, expired, serverOnly    *vtest.Cert
	clientOnly, foreign, selfSigned, interLeaf, root2 *vtest.Cert
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{}
	f.root = vtest.New(t, vtest.Spec{CN: "Test Root", IsCA: true})
	f.root2 = vtest.New(t, vtest.Spec{CN: "Other Root", IsCA: true})
	f.inter = vtest.New(t, vtest.Spec{CN: "Test Intermediate", IsCA: true, Issuer: f.root})
	f.leaf = vtest.New(t, vtest.Spec{CN: "server", SANs: []string{"localhost", "server.test"}, Issuer: f.root})
	f.ipLeaf = vtest.New(t, vtest.Spec{CN: "ip", SANs: []string{"127.0.0.1"}, Issuer: f.root})
	f.interLeaf = vtest.New(t, vtest.Spec{CN: "via intermediate", SANs: []string{"localhost"}, Issuer: f.inter})
	f.expired = vtest.New(t, vtest.Spec{CN: "old", SANs: []string{"localhost"}, Issuer: f.root,
		NotBefore: time.Now().AddDate(-2, 0, 0), NotAfter: time.Now().AddDate(-1, 0, 0)})
	f.serverOnly = vtest.New(t, vtest.Spec{CN: "srv", SANs: []string{"localhost"}, Issuer: f.root, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	f.clientOnly = vtest.New(t, vtest.Spec{CN: "cli", SANs: []string{"localhost"}, Issuer: f.root, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	f.foreign = vtest.New(t, vtest.Spec{CN: "foreign", SANs: []string{"localhost"}, Issuer: f.root2})
	f.selfSigned = vtest.New(t, vtest.Spec{CN: "self", SANs: []string{"localhost"}})
	dir := t.TempDir()
	f.caFile = filepath.Join(dir, "ca.pem")
	vtest.WriteFile(t, f.caFile, f.root.PEM())
	f.otherCAFile = filepath.Join(dir, "other.pem")
	vtest.WriteFile(t, f.otherCAFile, f.root2.PEM())
	return f
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	const client, server = verify.ClientVerifiesServer, verify.ServerVerifiesClient
	tests := []struct {
		name   string
		opts   verify.Options
		req    verify.Request
		allow  bool
		reason string
	}{
		{"valid for the server name", nil, verify.Request{PeerChain: vtest.Chain(f.leaf), ServerName: "localhost", RemoteAddr: "127.0.0.1:443", Side: client}, true, `valid for "localhost"`},
		{"intermediate sent by the peer", nil, verify.Request{PeerChain: vtest.Chain(f.interLeaf, f.inter), ServerName: "localhost", Side: client}, true, `"CN=Test Root"`},
		{"intermediate missing", nil, verify.Request{PeerChain: vtest.Chain(f.interLeaf), ServerName: "localhost", Side: client}, false, "does not chain to the certificate of"},
		{"wrong name", nil, verify.Request{PeerChain: vtest.Chain(f.leaf), ServerName: "evil.test", Side: client}, false, `not valid for "evil.test"`},
		{"name from the remote host", nil, verify.Request{PeerChain: vtest.Chain(f.ipLeaf), RemoteAddr: "127.0.0.1:443", Side: client}, true, `valid for "127.0.0.1"`},
		{"no name at all", nil, verify.Request{PeerChain: vtest.Chain(f.leaf), Side: client}, false, "no host name to check"},
		{"a unix socket's path is no name", nil, verify.Request{PeerChain: vtest.Chain(f.leaf), RemoteAddr: "unix:/run/app.sock", Side: client}, false, "no host name to check"},
		{"the server name over a unix socket", nil, verify.Request{PeerChain: vtest.Chain(f.leaf), ServerName: "server.test", RemoteAddr: "unix:/run/app.sock", Side: client}, true, `valid for "server.test"`},
		{"remote IP not in the certificate", nil, verify.Request{PeerChain: vtest.Chain(f.leaf), RemoteAddr: "127.0.0.1:443", Side: client}, false, `not valid for "127.0.0.1"`},
		{"server-name overrides", verify.Options{"server-name": {"server.test"}}, verify.Request{PeerChain: vtest.Chain(f.leaf), ServerName: "127.0.0.1", Side: client}, true, `"server.test"`},
		{"server-name override wrong", verify.Options{"server-name": {"other.test"}}, verify.Request{PeerChain: vtest.Chain(f.leaf), ServerName: "localhost", Side: client}, false, "other.test"},
		{"unknown CA", nil, verify.Request{PeerChain: vtest.Chain(f.foreign), ServerName: "localhost", Side: client}, false, `issued by "CN=Other Root"`},
		{"self-signed", nil, verify.Request{PeerChain: vtest.Chain(f.selfSigned), ServerName: "localhost", Side: client}, false, "spkipin"},
		{"two CA files", verify.Options{"ca-file": {"", ""}}, verify.Request{PeerChain: vtest.Chain(f.foreign), ServerName: "localhost", Side: client}, true, "Other Root"},
		{"expired", nil, verify.Request{PeerChain: vtest.Chain(f.expired), ServerName: "localhost", Side: client}, false, "expired or not yet valid"},
		{"client-only cert as a server", nil, verify.Request{PeerChain: vtest.Chain(f.clientOnly), ServerName: "localhost", Side: client}, false, "usage"},
		{"client cert, no name check", nil, verify.Request{PeerChain: vtest.Chain(f.clientOnly), ServerName: "whatever", RemoteAddr: "127.0.0.1:5555", Side: server}, true, "Test Root"},
		{"server-only cert as a client", nil, verify.Request{PeerChain: vtest.Chain(f.serverOnly), RemoteAddr: "127.0.0.1:5555", Side: server}, false, "usage"},
		{"no certificate", nil, verify.Request{Side: client}, false, "no certificate"},
		{"garbage", nil, verify.Request{PeerChain: [][]byte{[]byte("junk")}, Side: client}, false, "cannot parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := verify.Options{"ca-file": {f.caFile}}
			for k, v := range tt.opts {
				opts[k] = v
			}
			if len(tt.opts["ca-file"]) == 2 {
				opts["ca-file"] = []string{f.caFile, f.otherCAFile}
			}
			check := func(t *testing.T, v verify.Verifier) {
				r := tt.req
				verdict := vtest.Verify(t, v, &r)
				if verdict.Allow != tt.allow || !strings.Contains(verdict.Reason+verdict.Matched, tt.reason) {
					t.Errorf("verdict %+v, want allow %v mentioning %q", verdict, tt.allow, tt.reason)
				}
			}
			t.Run("in process", func(t *testing.T) {
				v := ca.New(nil)
				if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: opts}); err != nil {
					t.Fatal(err)
				}
				check(t, v)
			})
			t.Run("plugin", func(t *testing.T) {
				p, _ := vtest.Start(t, "ca", opts)
				check(t, p)
			})
		})
	}
}

// TestSystemRoots checks that without ca-file a private CA is not trusted.
func TestSystemRoots(t *testing.T) {
	f := newFixture(t)
	v := ca.New(nil)
	r, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.NeedsChain {
		t.Error("NeedsChain = false; the ca verifier needs the intermediates")
	}
	verdict := vtest.Verify(t, v, &verify.Request{PeerChain: vtest.Chain(f.leaf), ServerName: "localhost"})
	if verdict.Allow {
		t.Fatal("a private CA's certificate was accepted by the system roots")
	}
	if !strings.Contains(verdict.Reason, "the system roots") {
		t.Errorf("reason %q does not say which roots were used", verdict.Reason)
	}
}

// TestCacheFor: an allow may be cached for a minute, never past the expiry
// of a certificate of the chain; a rejection is not cached.
func TestCacheFor(t *testing.T) {
	f := newFixture(t)
	soon := vtest.New(t, vtest.Spec{CN: "soon", SANs: []string{"localhost"}, Issuer: f.root,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(20 * time.Second)})
	v := ca.New(nil)
	if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{"ca-file": {f.caFile}}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		cert     *vtest.Cert
		min, max time.Duration
	}{
		{"valid for long", f.leaf, time.Minute, time.Minute},
		{"expires in 20s", soon, time.Second, 20 * time.Second},
		{"rejected", f.selfSigned, 0, 0},
	}
	for _, tt := range tests {
		verdict := vtest.Verify(t, v, &verify.Request{PeerChain: vtest.Chain(tt.cert), ServerName: "localhost", Side: verify.ClientVerifiesServer})
		if verdict.CacheFor < tt.min || verdict.CacheFor > tt.max {
			t.Errorf("%s: cache for %s, want between %s and %s", tt.name, verdict.CacheFor, tt.min, tt.max)
		}
	}
}

// CheckValues refuses what Configure refuses of the options and the CA
// files' whereabouts, without reading them; the certificates in them are
// Configure's to judge.
func TestCheckValues(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	root, garbage := f.caFile, filepath.Join(dir, "garbage.pem")
	vtest.WriteFile(t, garbage, []byte("not a certificate\n"))
	// Larger than a check reads: only the verifier judges what is in it.
	bigGarbage := filepath.Join(dir, "big-garbage.pem")
	vtest.WriteFile(t, bigGarbage, []byte(strings.Repeat("not a certificate\n", 4000)))
	tests := []struct {
		name       string
		opts       verify.Options
		checkSays  string // "" when CheckValues takes the options
		configSays string // "" when Configure does
	}{
		{"the system roots", verify.Options{}, "", ""},
		{"a CA file and a name", verify.Options{"ca-file": {root}, "server-name": {"server.test"}}, "", ""},
		{"what is in a small file", verify.Options{"ca-file": {garbage}}, `option ca-file="` + garbage, `option ca-file="` + garbage},
		{"what is in a large file", verify.Options{"ca-file": {root, bigGarbage}}, "", `option ca-file="` + bigGarbage},
		{"a missing file", verify.Options{"ca-file": {root, filepath.Join(dir, "none.pem")}}, "no such file", "no such file"},
		{"a directory", verify.Options{"ca-file": {dir}}, "is a directory", "is a directory"},
		{"a bad name", verify.Options{"server-name": {"a b"}}, `option server-name="a b"`, `option server-name="a b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := ca.New(nil)
			err := v.CheckValues(tt.opts)
			if tt.checkSays == "" && err != nil || tt.checkSays != "" && (!errors.Is(err, verify.ErrBadOption) || !strings.Contains(err.Error(), tt.checkSays)) {
				t.Errorf("CheckValues = %v; want %q", err, tt.checkSays)
			}
			_, err = v.Configure(context.Background(), &verify.ConfigureRequest{Options: tt.opts})
			if tt.configSays == "" && err != nil || tt.configSays != "" && (!errors.Is(err, verify.ErrBadOption) || !strings.Contains(err.Error(), tt.configSays)) {
				t.Errorf("Configure = %v; want %q", err, tt.configSays)
			}
		})
	}
}

// TestWarnsOfClientsOfAnyPublicCA: a server verifying clients checks no
// name unless server-name is given, so against the system roots any
// client holding a certificate a public CA issued for client
// authentication is accepted. That was only in the package's
// documentation; the first client verified so now warns, once.
func TestWarnsOfClientsOfAnyPublicCA(t *testing.T) {
	f := newFixture(t)
	const warning = "any client holding a certificate that a public CA issued"
	for _, tt := range []struct {
		name string
		opts verify.Options
		side verify.Side
		want int // warnings
	}{
		{"system roots, clients", verify.Options{}, verify.ServerVerifiesClient, 1},
		{"system roots, clients, server-name", verify.Options{"server-name": {"cli"}}, verify.ServerVerifiesClient, 0},
		{"ca-file, clients", verify.Options{"ca-file": {f.caFile}}, verify.ServerVerifiesClient, 0},
		{"system roots, servers", verify.Options{}, verify.ClientVerifiesServer, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncbuf.Buffer
			v := ca.New(hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}))
			if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: tt.opts}); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				vtest.Verify(t, v, &verify.Request{PeerChain: vtest.Chain(f.clientOnly), ServerName: "localhost", Side: tt.side})
			}
			if got := strings.Count(logs.String(), warning); got != tt.want {
				t.Errorf("%d warnings, want %d; logged:\n%s", got, tt.want, logs.String())
			}
		})
	}
}
