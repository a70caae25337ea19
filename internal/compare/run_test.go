package compare_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/compare"
	"github.com/tlspin/tlspin/verifiers/builtin"
)

// inProcess is a built-in verifier run in the test's process in place of
// its plugin, so that Run's verdicts can be checked without building
// binaries (cmd/tlspin/cli's tests run the real plugins).
type inProcess struct{ v verify.Verifier }

func (p inProcess) Verify(ctx context.Context, req *verify.Request) (*verify.Verdict, error) {
	return p.v.Verify(ctx, req)
}

func (p inProcess) Commit(ctx context.Context, req *verify.Request) (*verify.CommitResponse, error) {
	if c, ok := p.v.(verify.Committer); ok {
		return c.Commit(ctx, req)
	}
	return &verify.CommitResponse{}, nil
}

func (p inProcess) Close() error {
	if c, ok := p.v.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// runInProcess compares verifiers (labels as --verifier gives them) on
// ref with the built-ins in process.
func runInProcess(t *testing.T, ref *compare.Reference, verifiers ...string) *compare.Report {
	t.Helper()
	reg := builtin.New(nil)
	rep, err := compare.Run(context.Background(), compare.Config{
		Reference: ref,
		Verifiers: verifiers,
		Dir:       t.TempDir(),
		Samples:   2,
		InProcess: func(name string) (verify.Verifier, error) { return reg.Lookup(name) },
		Start: func(ctx context.Context, name string, opts verify.Options) (compare.Plugin, error) {
			v, err := reg.Lookup(name)
			if err != nil {
				return nil, err
			}
			if _, err := v.Configure(ctx, &verify.ConfigureRequest{Options: opts}); err != nil {
				return nil, err
			}
			return inProcess{v}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestStolenCertNoKey: the genuine certificate sent by a server that does
// not hold its key is allowed by every verifier (it is the certificate
// they trust), and rejected all the same, because the handshake fails: the
// peer cannot sign the handshake with the certificate's key. The reason
// must say so, not blame the verifier.
func TestStolenCertNoKey(t *testing.T) {
	for _, kt := range []certs.KeyType{certs.ECDSA, certs.RSA, certs.Ed25519} {
		ref, err := compare.NewReference(kt)
		if err != nil {
			t.Fatal(err)
		}
		rep := runInProcess(t, ref, compare.DefaultVerifiers()...)
		for _, v := range compare.DefaultVerifiers() {
			t.Run(string(kt)+"/"+v, func(t *testing.T) {
				if ok, ran := rep.Accepted(v, compare.Same); !ran || !ok {
					t.Fatalf("the reference itself: accepted %v, ran %v", ok, ran)
				}
				x, ran := rep.Find(v, compare.StolenCertNoKey)
				if !ran || x.Accepted || x.Failed {
					t.Fatalf("%s: %+v (ran %v); want a rejection", compare.StolenCertNoKey, x, ran)
				}
				for _, s := range []string{"handshake failed", "did not prove", "private key"} {
					if !strings.Contains(x.Reason, s) {
						t.Errorf("reason %q does not say %q", x.Reason, s)
					}
				}
			})
		}
	}
}
