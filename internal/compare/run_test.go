package compare_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/direct"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/compare"
	"github.com/tlspin/tlspin/verifiers"
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

// newScenarios makes a new reference and its scenarios.
func newScenarios(t *testing.T) (*compare.Reference, []compare.Scenario) {
	t.Helper()
	ref, err := compare.NewReference(certs.ECDSA)
	if err != nil {
		t.Fatal(err)
	}
	ss, _, err := compare.Scenarios(ref)
	if err != nil {
		t.Fatal(err)
	}
	return ref, ss
}

// startInProcess is compare.Config.Start for a built-in verifier run in
// process, configured with opts.
func startInProcess(ctx context.Context, reg *verifiers.Registry, name string, opts verify.Options) (compare.Plugin, error) {
	v, err := reg.Lookup(name)
	if err != nil {
		return nil, err
	}
	if _, err := v.Configure(ctx, &verify.ConfigureRequest{Options: opts}); err != nil {
		return nil, err
	}
	return inProcess{v}, nil
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
			return startInProcess(ctx, reg, name, opts)
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

// broken is a plugin that fails every Verify as mode says, counting the
// calls it receives: hang waits out the caller's deadline, as a hung
// plugin does (host.ErrTimeout), crash fails at once, as a plugin that
// died does, own answers with the verifier's own error, which is no
// reason to stop asking it, and reject rejects every peer.
// brokenTimeout bounds the handshakes of the tests of a broken plugin:
// what a hung one costs, once, and a bound the other handshakes must
// never reach, under -race on a loaded 2-core machine (where 200 ms can
// be reached, and a cell then says the verifier was not asked).
const brokenTimeout = 2 * time.Second

type broken struct {
	mode  string
	calls *atomic.Int32
}

func (b broken) Verify(ctx context.Context, _ *verify.Request) (*verify.Verdict, error) {
	b.calls.Add(1)
	switch b.mode {
	case "hang":
		<-ctx.Done()
		return nil, fmt.Errorf("%w: verifier %q gave no verdict in time: %w", host.ErrTimeout, "broken", ctx.Err())
	case "crash":
		return nil, errors.New(`host: verifier "broken" (pid 1) failed: rpc: verifier plugin unreachable: EOF; restarting it`)
	case "reject":
		return &verify.Verdict{Reason: "not this one"}, nil
	}
	return nil, fmt.Errorf("host: verifier %q: %w", "broken", &direct.RemoteError{Message: "cannot decide on this one"})
}

func (broken) Close() error { return nil }

// TestBrokenPluginNotAskedAgain: a plugin that hung or died on a scenario
// is not asked again: the rest of its cells say failed at once, so a hung
// one costs one timeout, not one per scenario. One that answered with
// an error of its own is asked on every scenario. The other verifier's
// results are untouched.
func TestBrokenPluginNotAskedAgain(t *testing.T) {
	ref, ss := newScenarios(t)
	reg := builtin.New(nil)
	for _, tt := range []struct {
		mode      string
		wantCalls int
		notAsked  string
	}{
		{"hang", 1, "hung"},
		{"crash", 1, "died"},
		{"own", len(ss), ""},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			var calls atomic.Int32
			rep, err := compare.Run(context.Background(), compare.Config{
				Reference: ref,
				Verifiers: []string{"broken", "spkipin"},
				Options:   map[string]verify.Options{"broken": {"mode": {tt.mode}}},
				Dir:       t.TempDir(),
				Samples:   2,
				Timeout:   brokenTimeout,
				InProcess: func(name string) (verify.Verifier, error) { return reg.Lookup(name) },
				Start: func(ctx context.Context, name string, opts verify.Options) (compare.Plugin, error) {
					if name == "broken" {
						return broken{mode: opts["mode"][0], calls: &calls}, nil
					}
					return startInProcess(ctx, reg, name, opts)
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := int(calls.Load()); got != tt.wantCalls {
				t.Errorf("the plugin was asked %d times, want %d", got, tt.wantCalls)
			}
			for i, s := range ss {
				x, ran := rep.Find("broken", s.Name)
				if !ran || !x.Failed || x.Accepted {
					t.Errorf("broken × %s: %+v (ran %v); want failed", s.Name, x, ran)
				}
				if notAsked := strings.HasPrefix(x.Reason, "not asked"); notAsked != (i >= tt.wantCalls) || (notAsked && !strings.Contains(x.Reason, tt.notAsked)) {
					t.Errorf("broken × %s: reason %q; want not asked %v, saying %q", s.Name, x.Reason, i >= tt.wantCalls, tt.notAsked)
				}
				y, ran := rep.Find("spkipin", s.Name)
				if !ran || y.Failed {
					t.Errorf("spkipin × %s: %+v (ran %v); want a decision", s.Name, y, ran)
				}
			}
			if got := rep.FailedVerifiers(); !slices.Equal(got, []string{"broken"}) {
				t.Errorf("failed verifiers %q, want broken alone", got)
			}
		})
	}
}

// TestPrimingFailure: a tofu verifier that hangs, dies, errs or rejects
// while compare primes it with the reference is a failed verifier, as on
// a scenario, not the end of the run: its cells say failed, saying that
// priming failed and why, it is not asked about the scenarios (it has
// nothing to compare them with), and the other verifier is compared.
func TestPrimingFailure(t *testing.T) {
	ref, ss := newScenarios(t)
	reg := builtin.New(nil)
	for _, tt := range []struct{ mode, says string }{
		{"hang", "gave no verdict in time"},
		{"crash", "verifier plugin unreachable"},
		{"own", "cannot decide on this one"},
		{"reject", "not this one"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			var calls atomic.Int32
			rep, err := compare.Run(context.Background(), compare.Config{
				Reference: ref,
				Verifiers: []string{"tofu", "spkipin"},
				Dir:       t.TempDir(),
				Samples:   2,
				Timeout:   brokenTimeout,
				InProcess: func(name string) (verify.Verifier, error) { return reg.Lookup(name) },
				Start: func(ctx context.Context, name string, opts verify.Options) (compare.Plugin, error) {
					if name == "tofu" {
						return broken{mode: tt.mode, calls: &calls}, nil
					}
					return startInProcess(ctx, reg, name, opts)
				},
			})
			if err != nil {
				t.Fatalf("Run: %v; want a report with tofu failed", err)
			}
			if got := calls.Load(); got != 1 {
				t.Errorf("tofu was asked %d times, want once (priming)", got)
			}
			for _, s := range ss {
				x, ran := rep.Find("tofu", s.Name)
				if !ran || !x.Failed || x.Accepted {
					t.Errorf("tofu × %s: %+v (ran %v); want failed", s.Name, x, ran)
				}
				if !strings.Contains(x.Reason, "priming with the reference failed") || !strings.Contains(x.Reason, tt.says) {
					t.Errorf("tofu × %s: reason %q; want it to say priming with the reference failed, and %q", s.Name, x.Reason, tt.says)
				}
				if y, ran := rep.Find("spkipin", s.Name); !ran || y.Failed {
					t.Errorf("spkipin × %s: %+v (ran %v); want a decision", s.Name, y, ran)
				}
			}
			if got := rep.FailedVerifiers(); !slices.Equal(got, []string{"tofu"}) {
				t.Errorf("failed verifiers %q, want tofu alone", got)
			}
			for _, v := range rep.Verifiers {
				if v.Name == "tofu" && (v.PluginUs != 0 || !strings.Contains(v.Note, "priming with the reference failed")) {
					t.Errorf("tofu: plugin cost %v, note %q; want none, and the note to say priming failed", v.PluginUs, v.Note)
				}
			}
		})
	}
}

// TestStartFailure: a verifier whose plugin cannot be started for a
// reason of its own (Start's error wraps ErrNotStarted: it crashed before
// its handshake, or timed out) is a failed verifier, not the end of the
// run: its cells say failed and why, and the other verifier is compared.
// It ended the run, every other result lost. Any other error of Start
// (how the verifier was asked: a bad option) still ends it.
func TestStartFailure(t *testing.T) {
	ref, ss := newScenarios(t)
	reg := builtin.New(nil)
	for _, tt := range []struct {
		name     string
		err      error
		reported bool
	}{
		{"did not start", fmt.Errorf("%w: %w", compare.ErrNotStarted, errors.New(`verifier "dies" exited without a handshake`)), true},
		{"a bad option", errors.New(`bad option "pin"`), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := compare.Run(context.Background(), compare.Config{
				Reference: ref,
				Verifiers: []string{"dies", "spkipin"},
				Options:   map[string]verify.Options{"dies": {"a": {"b"}}},
				Dir:       t.TempDir(),
				Samples:   2,
				InProcess: func(name string) (verify.Verifier, error) { return reg.Lookup(name) },
				Start: func(ctx context.Context, name string, opts verify.Options) (compare.Plugin, error) {
					if name == "dies" {
						return nil, tt.err
					}
					return startInProcess(ctx, reg, name, opts)
				},
			})
			if !tt.reported {
				if err == nil || !errors.Is(err, tt.err) {
					t.Fatalf("Run: %v; want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v; want a report with dies failed", err)
			}
			for _, s := range ss {
				x, ran := rep.Find("dies", s.Name)
				if !ran || !x.Failed || x.Accepted || !strings.Contains(x.Reason, "exited without a handshake") {
					t.Errorf("dies × %s: %+v (ran %v); want failed, saying why", s.Name, x, ran)
				}
				if y, ran := rep.Find("spkipin", s.Name); !ran || y.Failed {
					t.Errorf("spkipin × %s: %+v (ran %v); want a decision", s.Name, y, ran)
				}
			}
			if got := rep.FailedVerifiers(); !slices.Equal(got, []string{"dies"}) {
				t.Errorf("failed verifiers %q, want dies alone", got)
			}
		})
	}
}

// runExtra compares verifier on ref's scenarios and extra, in process,
// with handshakes bounded by timeout.
func runExtra(t *testing.T, ref *compare.Reference, verifier string, timeout time.Duration, extra ...compare.Scenario) *compare.Report {
	t.Helper()
	reg := builtin.New(nil)
	rep, err := compare.Run(context.Background(), compare.Config{
		Reference: ref,
		Verifiers: []string{verifier},
		Extra:     extra,
		Dir:       t.TempDir(),
		Samples:   2,
		Timeout:   timeout,
		InProcess: func(name string) (verify.Verifier, error) { return reg.Lookup(name) },
		Start: func(ctx context.Context, name string, opts verify.Options) (compare.Plugin, error) {
			return startInProcess(ctx, reg, name, opts)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestNotReachedIsNotARejection: a handshake that fails before the
// verifier is asked (here crypto/tls cannot parse the certificate the
// server sends) is no verdict of the verifier's. Its cell says failed,
// not rejected, the verifier's cost is not measured, and the other
// scenarios keep their verdicts.
func TestNotReachedIsNotARejection(t *testing.T) {
	ref, _ := newScenarios(t)
	key, err := certs.GenerateKey(certs.ECDSA, 256)
	if err != nil {
		t.Fatal(err)
	}
	garbled := compare.Scenario{Name: "garbled", What: "a certificate that does not parse", Cert: tls.Certificate{Certificate: [][]byte{[]byte("not DER")}, PrivateKey: key}}
	rep := runExtra(t, ref, "spkipin", 10*time.Second, garbled)
	x, ran := rep.Find("spkipin", "garbled")
	if !ran || x.Accepted || !x.Failed {
		t.Fatalf("garbled: %+v (ran %v); want failed, not a rejection", x, ran)
	}
	if !strings.Contains(x.Reason, "before the verifier") {
		t.Errorf("reason %q does not say the verifier was not reached", x.Reason)
	}
	if ok, ran := rep.Accepted("spkipin", compare.Same); !ran || !ok {
		t.Errorf("the reference itself: accepted %v, ran %v", ok, ran)
	}
	if got := rep.FailedVerifiers(); !slices.Equal(got, []string{"spkipin"}) {
		t.Errorf("failed verifiers %q, want spkipin", got)
	}
}

// TestTimeoutBeforeTheVerifierIsNotARejection: handshakes that time out
// before the server's certificate arrives (a machine too loaded for
// --verify-timeout) make no column of rejections: every cell says
// failed.
func TestTimeoutBeforeTheVerifierIsNotARejection(t *testing.T) {
	ref, scen := newScenarios(t)
	rep := runExtra(t, ref, "spkipin", time.Nanosecond)
	if len(rep.Results) != len(scen) {
		t.Fatalf("%d results, want %d", len(rep.Results), len(scen))
	}
	for _, x := range rep.Results {
		if x.Accepted || !x.Failed || !strings.Contains(x.Reason, "never reached the verifier") {
			t.Errorf("%s: %+v; want failed, the verifier not reached", x.Scenario, x)
		}
	}
}
