// Package compare puts pinning strategies side by side. From a reference
// certificate it derives the certificates a pin meets in real life (the
// same one, a renewal, a new key, another CA, an attacker's look-alike, an
// attacker's forged chain, the real chain from a server without its key,
// an expired one, a rotated intermediate, and any the user adds),
// configures each verifier to trust the reference (a pin verifier with
// chain=ca or chain=any and no pin pins the reference's CA), and runs
// every scenario through the verifier with a real TLS handshake on
// loopback. It also measures what one verification costs, in process and
// through the plugin.
package compare

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/bench"
	"github.com/tlspin/tlspin/internal/hsserver"
)

// ErrDuplicateVerifier is returned by Run when a verifier is named twice.
var ErrDuplicateVerifier = errors.New("compare: a verifier may be named once")

// ErrDuplicateScenario is returned by Run when an extra scenario (a --cert
// file) has the name of another scenario.
var ErrDuplicateScenario = errors.New("compare: a scenario name may be used once")

// ErrNotStarted, wrapped by an error of Config.Start, says that the
// verifier's plugin could not be started for a reason of its own (it
// exited before its handshake, or did not finish it in time), not
// because of how it was asked: the verifier is then a failed one, its
// cells say why, and the others are compared. Any other error of Start
// (a bad option) ends the run.
var ErrNotStarted = errors.New("compare: the verifier's plugin did not start")

// Plugin is a started verifier, normally a *host.Plugin.
type Plugin interface {
	Verify(ctx context.Context, req *verify.Request) (*verify.Verdict, error)
	Close() error
}

// Config says what to compare.
type Config struct {
	Reference *Reference
	// Verifiers to compare (DefaultVerifiers when empty), by label: a
	// verifier's name, or a CA pin whose pin compare fills in from the
	// reference, as FillLabel writes it (spkipin:chain=ca). The label
	// heads the verifier's column and names it in Results.
	Verifiers []string
	// Options, for a verifier named here, are used as given instead of
	// configuring it to trust the reference by recipe (TrustReference);
	// a verifier without a recipe (an external one) needs them.
	Options map[string]verify.Options
	// Extra scenarios run after the standard ones (--cert files).
	Extra []Scenario
	// Dir receives the files verifiers need (allowlist, TOFU pins, CA);
	// it must exist.
	Dir string
	// InProcess returns a fresh, unconfigured verifier called name, run
	// in process to measure its cost. An error skips the verifier, with
	// the error as the note (a verifier not built into this tlspin),
	// unless its Options are given: it is then compared through its
	// plugin only.
	InProcess func(name string) (verify.Verifier, error)
	// Start launches verifier name as a plugin configured with opts.
	Start func(ctx context.Context, name string, opts verify.Options) (Plugin, error)
	// Samples is how many Verify calls each cost is the median of
	// (default 200).
	Samples int
	// Timeout bounds one handshake (default 10s).
	Timeout time.Duration
	// Progress, if set, is told before each verifier is compared.
	Progress func(done, total int, what string)
}

// Result is one verifier's decision on one scenario.
type Result struct {
	Verifier string `json:"verifier"`
	Scenario string `json:"scenario"`
	Accepted bool   `json:"accepted"`
	// Failed is set when the verifier decided nothing: it crashed, timed
	// out, returned an error or no verdict, or could not record the peer,
	// or it was not asked, having hung or crashed on an earlier scenario,
	// failed while primed with the reference (Trust.Prime), or not
	// started (ErrNotStarted), or the handshake never reached it (a
	// timeout before the server's certificate arrived).
	// The peer was rejected to fail closed (Accepted is false).
	Failed bool   `json:"failed"`
	Reason string `json:"reason"`
}

// VerifierInfo describes one verifier compared.
type VerifierInfo struct {
	Name string `json:"name"`
	// InProcessUs and PluginUs are median microseconds per Verify. In JSON
	// (MarshalJSON), what was not measured is null.
	InProcessUs float64
	PluginUs    float64
	PinBytes    int
	Note        string
	// Skipped is set when the verifier could not be compared.
	Skipped bool
	// NoInProcess is set when the verifier is not built in: it has no
	// in-process cost (InProcessUs is 0), shown as n/a.
	NoInProcess bool
	// Failed is set when the verifier failed on a scenario, while primed
	// with the reference, while its cost was measured, or did not start:
	// its costs are not measured (null in JSON).
	Failed bool
	// NoPinBytes is set when compare does not know the size of what the
	// user keeps (a verifier configured with the options given): PinBytes
	// is 0, shown as - and null.
	NoPinBytes bool
}

// FailedVerifiers returns the names of the verifiers that failed on a
// scenario, while primed with the reference, while their cost was
// measured, or did not start.
func (r *Report) FailedVerifiers() []string {
	var out []string
	for _, v := range r.Verifiers {
		if v.Failed {
			out = append(out, v.Name)
		}
	}
	return out
}

// Report is the whole comparison.
type Report struct {
	Results   []Result       `json:"results"`
	Verifiers []VerifierInfo `json:"verifiers"`
	// Scenarios lists the scenarios run, in order.
	Scenarios []Scenario `json:"-"`
	// Skipped explains scenarios that could not be made.
	Skipped []string `json:"-"`
	// ServerName is the name every handshake asked for.
	ServerName string `json:"-"`
}

// Accepted reports whether verifier accepted scenario, and whether that
// pair was run at all.
func (r *Report) Accepted(verifier, scenario string) (accepted, ran bool) {
	x, ran := r.result(verifier, scenario)
	return x.Accepted, ran
}

// Find returns verifier's result on scenario, and whether that pair was
// run at all.
func (r *Report) Find(verifier, scenario string) (Result, bool) {
	return r.result(verifier, scenario)
}

func (r *Report) result(verifier, scenario string) (Result, bool) {
	for _, x := range r.Results {
		if x.Verifier == verifier && x.Scenario == scenario {
			return x, true
		}
	}
	return Result{}, false
}

// Run compares the verifiers on every scenario.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Reference == nil {
		return nil, errors.New("compare: no reference")
	}
	if cfg.Start == nil || cfg.InProcess == nil {
		return nil, errors.New("compare: Start and InProcess are required")
	}
	if len(cfg.Verifiers) == 0 {
		cfg.Verifiers = DefaultVerifiers()
	}
	// Results, columns and Options are keyed by name: a name given twice
	// would show two columns of one configuration under one label.
	for i, name := range cfg.Verifiers {
		if slices.Contains(cfg.Verifiers[:i], name) {
			return nil, fmt.Errorf("%w: verifier %q given twice", ErrDuplicateVerifier, name)
		}
	}
	if cfg.Samples <= 0 {
		cfg.Samples = 200
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	scen, skipped, err := Scenarios(cfg.Reference)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, s := range scen {
		seen[s.Name] = true
	}
	for _, s := range cfg.Extra {
		if seen[s.Name] {
			return nil, fmt.Errorf("%w: scenario name %q given twice (rename the --cert file)", ErrDuplicateScenario, s.Name)
		}
		seen[s.Name] = true
		scen = append(scen, s)
	}
	srv, err := serve(cfg.Reference.Leaf)
	if err != nil {
		return nil, err
	}
	defer srv.Close()

	rep := &Report{Scenarios: scen, Skipped: skipped, ServerName: cfg.Reference.ServerName}
	for i, name := range cfg.Verifiers {
		if cfg.Progress != nil {
			cfg.Progress(i+1, len(cfg.Verifiers), "comparing "+name)
		}
		info, results, err := compareOne(ctx, cfg, name, scen, srv)
		if err != nil {
			return nil, err
		}
		rep.Verifiers = append(rep.Verifiers, info)
		rep.Results = append(rep.Results, results...)
	}
	return rep, nil
}

// compareOne runs every scenario through one verifier.
func compareOne(ctx context.Context, cfg Config, label string, scen []Scenario, srv *server) (VerifierInfo, []Result, error) {
	opts, given := cfg.Options[label]
	name, ca, ok := parseLabel(label)
	if given {
		name = label
	} else if !ok || (ca.chain == "" && !slices.Contains(DefaultVerifiers(), name)) {
		return VerifierInfo{}, nil, fmt.Errorf("%w: %q (known: %s, and md5pin, sha256pin, spkipin or allowlist with chain=ca or chain=any and no pin, filled in with the reference's CA; give the options of any other verifier: --verifier NAME:key=value)", ErrUnknownStrategy, label, strings.Join(DefaultVerifiers(), ", "))
	}
	iv, err := cfg.InProcess(name)
	if err != nil {
		if !given {
			return VerifierInfo{Name: label, Skipped: true, Note: fmt.Sprintf("skipped: %v", err)}, nil, nil
		}
		iv = nil
	}
	var trust Trust
	if given {
		trust = Trust{Options: opts, Note: "configured with the options given"}
	} else {
		desc, err := iv.Describe(ctx)
		if err != nil {
			return VerifierInfo{}, nil, fmt.Errorf("compare: %s: describe: %w", name, err)
		}
		dir := filepath.Join(cfg.Dir, strings.NewReplacer(":", "-", ",", "-", "=", "-").Replace(label))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return VerifierInfo{}, nil, fmt.Errorf("compare: %w", err)
		}
		trust, err = TrustReference(label, cfg.Reference, dir, desc)
		if errors.Is(err, ErrBadFill) {
			// A reference with no CA (self-signed) has no CA pin: the
			// other columns are compared all the same.
			return VerifierInfo{Name: label, Skipped: true, Note: fmt.Sprintf("skipped: %v", err)}, nil, nil
		}
		if err != nil {
			return VerifierInfo{}, nil, err
		}
	}
	p, err := cfg.Start(ctx, name, trust.Options)
	if err != nil {
		if errors.Is(err, ErrNotStarted) && ctx.Err() == nil {
			why := "its plugin did not start: " + strings.TrimPrefix(err.Error(), ErrNotStarted.Error()+": ")
			return failedUnasked(cfg, label, trust, scen, given, why)
		}
		return VerifierInfo{}, nil, fmt.Errorf("compare: %s: %w", label, err)
	}
	defer p.Close()
	rec := &recorder{d: p}
	if trust.Prime {
		ok, fail, reason := srv.handshake(ctx, cfg, rec, scen[0].Cert)
		if ctx.Err() != nil {
			return VerifierInfo{}, nil, ctx.Err()
		}
		if !ok {
			why := "priming with the reference failed: "
			if !fail {
				why += "the verifier rejected it: "
			}
			return failedUnasked(cfg, label, trust, scen, given, why+reason)
		}
	}
	var (
		results []Result
		sameReq *verify.Request
		failed  int
		// gone says why the plugin is no longer asked: it hung, died or
		// answered garbage on a scenario; notAsked counts the scenarios
		// after it.
		gone     string
		notAsked int
	)
	for _, s := range scen {
		if gone != "" {
			// Asking again would cost as much again: a hung plugin the
			// whole timeout per scenario, a dead one a restart. Decided
			// nothing, so failed, as if it had been asked.
			results = append(results, Result{Verifier: label, Scenario: s.Name, Failed: true, Reason: "not asked: " + gone})
			failed++
			notAsked++
			continue
		}
		ok, fail, reason := srv.handshake(ctx, cfg, rec, s.Cert)
		results = append(results, Result{Verifier: label, Scenario: s.Name, Accepted: ok, Failed: fail, Reason: withoutDir(reason, cfg.Dir)})
		if fail {
			failed++
			gone = outOfService(rec.error(), s.Name)
		}
		if s.Name == Same {
			sameReq = rec.request()
		}
		if ctx.Err() != nil {
			return VerifierInfo{}, nil, ctx.Err()
		}
	}
	info := VerifierInfo{Name: label, PinBytes: trust.PinBytes, Note: trust.Note, NoPinBytes: given}
	// A verifier that failed is not timed: its figures would be those of
	// its failures (or of its timeout), and trying could take as long
	// again. Its cells say what happened; the run goes on to the others.
	if failed > 0 {
		info.Failed = true
		info.Note += fmt.Sprintf("; failed (peer rejected to fail closed) on %d of %d scenarios, so its cost was not measured", failed, len(scen))
		if notAsked > 0 {
			info.Note += fmt.Sprintf("; not asked on %d of them: %s", notAsked, gone)
		}
		return info, results, nil
	}
	if sameReq == nil {
		return info, results, nil
	}
	pl, err := bench.VerifyLatency(ctx, p, sameReq, cfg.Samples)
	if err != nil {
		if ctx.Err() != nil {
			return VerifierInfo{}, nil, ctx.Err()
		}
		info.Failed = true
		info.Note += fmt.Sprintf("; failed while its cost was measured, so its cost was not measured: %s", withoutDir(err.Error(), cfg.Dir))
		return info, results, nil
	}
	info.PluginUs = micros(pl)
	if iv == nil {
		info.Note += "; not built in, so no in-process cost"
		info.NoInProcess = true
		return info, results, nil
	}
	if _, err := iv.Configure(ctx, &verify.ConfigureRequest{Options: trust.Options}); err != nil {
		return VerifierInfo{}, nil, fmt.Errorf("compare: %s: configure in process: %w", label, err)
	}
	il, err := bench.VerifyLatency(ctx, iv, sameReq, cfg.Samples*5)
	if c, ok := iv.(interface{ Close() error }); ok {
		c.Close()
	}
	if err != nil {
		return VerifierInfo{}, nil, fmt.Errorf("compare: %s: in-process cost: %w", label, err)
	}
	info.InProcessUs = micros(il)
	return info, results, nil
}

// failedUnasked is the outcome of a verifier that could not be asked
// about any scenario, for the reason why: its plugin did not start, or
// it could not be primed with the reference (it hung, died, erred or
// rejected it), so it has nothing to compare them with (and a hung one
// would wait out the timeout again on each). It is a failed verifier, as
// one that fails on a scenario, not the end of the run: every cell says
// failed, and why. given is whether it was configured with the options
// given, whose pin size compare does not know.
func failedUnasked(cfg Config, label string, trust Trust, scen []Scenario, given bool, why string) (VerifierInfo, []Result, error) {
	why = withoutDir(why, cfg.Dir)
	results := make([]Result, 0, len(scen))
	for _, s := range scen {
		results = append(results, Result{Verifier: label, Scenario: s.Name, Failed: true, Reason: "not asked: " + why})
	}
	info := VerifierInfo{Name: label, PinBytes: trust.PinBytes, NoPinBytes: given, Failed: true}
	info.Note = trust.Note + fmt.Sprintf("; failed (peer rejected to fail closed) on all %d scenarios, not asked about them and its cost not measured: %s", len(scen), why)
	return info, results, nil
}

// outOfService says, for the rest of a verifier's scenarios, why it is
// not asked again after Verify failed with err on scenario: its plugin
// hung (host.ErrTimeout) or died or answered garbage (any error but the
// verifier's own answer, on which the host restarts it). It is empty when
// the verifier may be asked again: it answered with an error of its own,
// which may be the scenario's, or it decided and the peer could not be
// recorded (err nil).
func outOfService(err error, scenario string) string {
	switch {
	case err == nil || host.IsVerifierError(err):
		return ""
	case errors.Is(err, host.ErrTimeout):
		return fmt.Sprintf("the verifier hung on scenario %q (see its reason there), and each scenario would wait out the timeout again", scenario)
	}
	return fmt.Sprintf("the verifier's plugin died or answered garbage on scenario %q (see its reason there), and each scenario would only restart it", scenario)
}

func micros(d time.Duration) float64 {
	return float64(d.Nanoseconds()/10) / 100 // two decimals
}

// recorder remembers the last request and verdict that went through it.
type recorder struct {
	d   Plugin
	mu  sync.Mutex
	req *verify.Request
	v   *verify.Verdict
	err error
}

func (r *recorder) Verify(ctx context.Context, req *verify.Request) (*verify.Verdict, error) {
	v, err := r.d.Verify(ctx, req)
	r.mu.Lock()
	r.req, r.v, r.err = req, v, err
	r.mu.Unlock()
	return v, err
}

// Commit passes a commit on to the plugin (a TOFU pin to record).
func (r *recorder) Commit(ctx context.Context, req *verify.Request) (*verify.CommitResponse, error) {
	if c, ok := r.d.(verify.Committer); ok {
		return c.Commit(ctx, req)
	}
	return &verify.CommitResponse{}, nil
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.req, r.v, r.err = nil, nil, nil
	r.mu.Unlock()
}

// error is the error of the last Verify, if any.
func (r *recorder) error() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *recorder) request() *verify.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.req
}

// server presents whichever certificate the current scenario needs, on
// one loopback address for the whole run (TOFU pins are kept per address).
type server struct {
	*hsserver.Server
	cert atomic.Pointer[tls.Certificate]
}

func serve(initial tls.Certificate) (*server, error) {
	s := &server{}
	s.cert.Store(&initial)
	hs, err := hsserver.Listen(&tls.Config{
		MinVersion:             tls.VersionTLS13,
		SessionTicketsDisabled: true,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cert.Load(), nil
		},
	}, 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	s.Server = hs
	return s, nil
}

// handshake presents cert and lets d decide; it returns whether the
// handshake completed, whether the verifier failed (decided nothing, so
// the peer was rejected to fail closed: it erred, or the handshake never
// reached it), and the verifier's reason.
func (s *server) handshake(ctx context.Context, cfg Config, rec *recorder, cert tls.Certificate) (ok, failed bool, reason string) {
	s.cert.Store(&cert)
	rec.reset()
	addr := s.Addr()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, true, fmt.Sprintf("not asked: the handshake never reached the verifier: dial: %v", err)
	}
	var pending pintls.Pending
	tc := tls.Client(raw, pintls.ClientConfig(rec, cfg.Reference.ServerName, addr, nil, pintls.Options{Context: ctx, Timeout: cfg.Timeout, Pending: &pending}))
	herr := tc.HandshakeContext(ctx)
	tc.Close()
	if herr == nil {
		if err := pending.Commit(ctx); err != nil {
			return false, true, fmt.Sprintf("verifier allowed, but could not record the peer (fail closed): %v", err)
		}
	}
	rec.mu.Lock()
	v, verr := rec.v, rec.err
	rec.mu.Unlock()
	switch {
	case verr != nil:
		return false, true, fmt.Sprintf("verifier failed (fail closed): %v", verr)
	// A handshake that never reached the verifier (a timeout on a loaded
	// machine, a certificate crypto/tls could not parse) says nothing of
	// it: a rejection in its cell would be a verdict it never gave.
	case v == nil && herr != nil:
		return false, true, fmt.Sprintf("not asked: the handshake failed before the verifier was: %v", herr)
	case v == nil:
		return false, true, "not asked: the handshake completed without the verifier"
	case v.Allow && herr != nil && strings.Contains(herr.Error(), "invalid signature by the"):
		// crypto/tls checks the peer's CertificateVerify after the
		// verifier has judged its certificate; the error is a string.
		return false, false, fmt.Sprintf("verifier allowed the certificate, but the handshake failed: the peer did not prove it holds the certificate's private key (%v)", herr)
	case v.Allow && herr != nil:
		return false, false, fmt.Sprintf("verifier allowed, but the handshake failed: %v", herr)
	case v.Allow:
		if v.Matched != "" {
			return true, false, "matched " + v.Matched
		}
		if v.Reason != "" {
			return true, false, v.Reason
		}
		return true, false, "allowed"
	}
	return false, false, v.Reason
}

// withoutDir makes the paths of files in dir relative in a reason, so that
// reports do not carry the temporary directory of one run.
func withoutDir(reason, dir string) string {
	if dir == "" {
		return reason
	}
	return strings.ReplaceAll(reason, filepath.Clean(dir)+string(filepath.Separator), "")
}
