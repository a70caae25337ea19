package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin/core/cache"
	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/bench"
	"github.com/tlspin/tlspin/internal/compare"
	"github.com/tlspin/tlspin/internal/hsserver"
	"github.com/tlspin/tlspin/internal/launch"
	verifierreg "github.com/tlspin/tlspin/verifiers"
	"github.com/tlspin/tlspin/verifiers/builtin"
)

type benchFlags struct {
	verifier, key         string
	duration              time.Duration
	concurrency, launches int
	oneshots              int
	samples               int
	json                  bool
}

func (a *app) benchCommand() *cobra.Command {
	f := &benchFlags{}
	c := &cobra.Command{
		Use:   "bench [--verifier NAME] [--duration 5s] [--key ecdsa|rsa] [--json]",
		Short: "measure handshakes/s and verification latency, in process vs through the plugin",
		Long: `Measure what out-of-process verification costs. A loopback server presents
a generated certificate (a leaf issued by an intermediate CA); clients run
full TLS 1.3 handshakes (no resumption) against it, the server verified by
the verifier configured to trust that certificate:

  in-process     the verifier called directly, as a library
  floor          in process, after one round trip to cat(1) on pipes: the
                 least any verifier in another process costs on this
                 machine (its context switches and wake-ups), with
                 nothing of tlspin's protocol or plugin in it
  plugin         through its plugin process, every handshake asking it
  plugin+cache   through its plugin, behind the host's verdict cache

Modes run in turns within the same run, in slices of ` + strconv.FormatInt(bench.Slice.Milliseconds(), 10) + ` ms, so that the
machine's own drift hits every mode alike and ratios to in-process
compare like with like; what the plugin costs beyond the floor is
tlspin's. On Linux each mode's CPU time per handshake is shown too: this
process's (both ends of the handshake, and the host's side of the
verification) and the peer process's (cat, or the plugin): the plugin's
against cat's is what its process costs beyond the least any process
would. Also reports the latency of one Verify call, how long a plugin
takes to launch (from process start until it is configured), and the
wall time of one-shot commands run in turns against the same server:
tlspin send through the verifier against tlspin fingerprint (the same
handshake without a plugin) and, when openssl is on the PATH, openssl
s_client (a real peer's client, sending nothing, and not loading the
system's CA certificates, which it does not use and fingerprint does not
load either).`,
		Example: `  tlspin bench
  tlspin bench --verifier sha256pin --key rsa --duration 10s --json`,
		Args: noArgs("what to measure is set by flags: --verifier NAME, --duration D"),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runBench(cmd, f) },
	}
	fs := c.Flags()
	fs.StringVar(&f.verifier, "verifier", "spkipin", "verifier to measure: NAME or NAME:key=value,... (a built-in is configured to trust the generated certificate; an external one, found on the plugin path, takes the options given)")
	fs.StringVar(&f.key, "key", "ecdsa", "key type of the certificates: ecdsa (P-256) or rsa (2048)")
	fs.DurationVar(&f.duration, "duration", 5*time.Second, "how long each mode is measured")
	fs.IntVar(&f.concurrency, "concurrency", 0, "clients handshaking at once (default 0: 8 per CPU, enough to keep the CPUs busy: handshakes/s is a capacity figure)")
	fs.IntVar(&f.launches, "launches", 10, "plugin launches timed (the median is reported)")
	fs.IntVar(&f.oneshots, "oneshots", 10, "one-shot send, fingerprint and openssl s_client commands timed, each (0: none)")
	fs.IntVar(&f.samples, "samples", 2000, "Verify calls each single-call latency is the median of")
	fs.BoolVar(&f.json, "json", false, "print JSON")
	return c
}

func (a *app) runBench(cmd *cobra.Command, f *benchFlags) error {
	ctx := cmd.Context()
	switch {
	case f.key != "ecdsa" && f.key != "rsa":
		return usagef("--key %q: want ecdsa or rsa", f.key)
	case f.duration <= 0:
		return usagef("--duration %s: must be positive", f.duration)
	case f.launches <= 0:
		return usagef("--launches %d: must be positive", f.launches)
	case f.oneshots < 0:
		return usagef("--oneshots %d: must not be negative", f.oneshots)
	case f.samples <= 0:
		return usagef("--samples %d: must be positive", f.samples)
	case f.concurrency < 0:
		return usagef("--concurrency %d: must not be negative", f.concurrency)
	}
	ref, err := compare.NewReference(certs.KeyType(f.key))
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tlspin-bench-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)

	spec, err := launch.ParseSpec(f.verifier)
	if err != nil {
		return usageError{err}
	}
	c, err := a.launchConfig()
	if err != nil {
		return err
	}
	if err := c.CheckPinned([]launch.Spec{spec}); err != nil {
		return err
	}
	name := spec.Name
	// In process: the same verifier as a library, with its own files; an
	// external verifier has no in-process form.
	iv, err := builtin.New(nil).Lookup(name)
	external := errors.Is(err, verifierreg.ErrUnknown)
	if err != nil && !external {
		return err
	}
	var desc *verify.Description
	if !external {
		if desc, err = iv.Describe(ctx); err != nil {
			return err
		}
	}
	trust := func(sub string) (verify.Options, error) {
		if len(spec.Options) > 0 {
			return spec.Options, nil
		}
		t, err := trustIn(name, ref, filepath.Join(dir, sub), desc)
		if errors.Is(err, compare.ErrUnknownStrategy) {
			err = usagef("bench: no recipe makes %q trust the generated certificate: give its options, --verifier %s:key=value", name, name)
		}
		return t.Options, err
	}
	if !external {
		opts, err := trust("in-process")
		if err != nil {
			return err
		}
		if _, err := iv.Configure(ctx, &verify.ConfigureRequest{Options: opts}); err != nil {
			return fmt.Errorf("bench: configure %s in process: %w", name, err)
		}
		if c, ok := iv.(interface{ Close() error }); ok {
			defer c.Close()
		}
	}
	popts, err := trust("plugin")
	if err != nil {
		return err
	}

	rep := &bench.Report{
		Verifier:    name,
		Key:         map[string]string{"ecdsa": "ECDSA P-256", "rsa": "RSA 2048"}[f.key],
		ChainLength: len(ref.Leaf.Certificate),
		DurationS:   f.duration.Seconds(),
		Concurrency: f.concurrency,
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
	}
	if rep.Concurrency == 0 {
		rep.Concurrency = bench.DefaultConcurrency()
	}
	var (
		launches []time.Duration
		p        *host.Plugin
	)
	prog := newProgress(cmd.ErrOrStderr(), "bench")
	defer prog.Done()
	// The progress line's steps: the launches, the handshakes, a Verify
	// latency per mode (in process and the floor unless the verifier is
	// external, the plugin, the cache) and the one-shots if any.
	steps := f.launches + 1 + 2
	if !external {
		steps += 2
	}
	if f.oneshots > 0 {
		steps++
	}
	for i := range f.launches {
		prog.Step(i+1, steps, "starting the plugin")
		t0 := time.Now()
		q, err := launch.StartOne(ctx, c, launch.Spec{Name: name, Options: popts})
		if err != nil {
			return err
		}
		launches = append(launches, time.Since(t0))
		if i == f.launches-1 {
			p = q
		} else {
			q.Close()
		}
	}
	defer p.Close()
	rep.SetLaunches(launches)

	vc := cache.New(cache.Config{})
	cached := vc.Wrap(name, p)
	modes := []bench.Mode{{Name: bench.Plugin, D: p, Peer: p.Pid}, {Name: bench.Cached, D: cached, Peer: p.Pid}}
	switch {
	case external:
		rep.NoInProcess = fmt.Sprintf("%s is not built into tlspin, so it has no in-process form to compare with", name)
		rep.NoFloor = rep.NoInProcess
	default:
		fl, err := bench.StartFloor(iv)
		if err != nil {
			rep.NoFloor = err.Error()
			steps-- // no floor's latency
			modes = append([]bench.Mode{{Name: bench.InProcess, D: iv}}, modes...)
			break
		}
		defer fl.Close()
		modes = append([]bench.Mode{{Name: bench.InProcess, D: iv}, {Name: bench.FloorMode, D: fl, Peer: fl.Pid}}, modes...)
	}
	prog.Timed(f.launches+1, steps, fmt.Sprintf("handshakes, %d modes", len(modes)), time.Duration(len(modes))*f.duration)
	res, err := bench.Handshakes(ctx, bench.Config{
		Cert:        ref.Leaf,
		ServerName:  ref.ServerName,
		Duration:    f.duration,
		Concurrency: rep.Concurrency,
	}, modes...)
	if err != nil {
		return err
	}
	byName := map[string]bench.Result{}
	for _, r := range res {
		byName[r.Name] = r
	}
	rep.Summarize(byName[bench.InProcess], byName[bench.Plugin], byName[bench.Cached])
	if _, ok := byName[bench.FloorMode]; ok {
		rep.SummarizeFloor(byName[bench.InProcess], byName[bench.FloorMode])
	}
	if st := vc.Stats(); st.Hits+st.Misses > 0 {
		rep.CacheHitRatio = float64(int64(10000*float64(st.Hits)/float64(st.Hits+st.Misses))) / 10000
	}

	req := &verify.Request{PeerChain: ref.Leaf.Certificate, ServerName: ref.ServerName, Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:443"}
	outs := map[string]*float64{bench.InProcess: &rep.InProcessVerifyUs, bench.FloorMode: &rep.FloorVerifyUs, bench.Plugin: &rep.PluginVerifyUs, bench.Cached: &rep.CachedVerifyUs}
	for i, m := range modes {
		prog.Step(f.launches+2+i, steps, "Verify latency")
		d, err := bench.VerifyLatency(ctx, m.D, req, f.samples)
		if err != nil {
			return err
		}
		*outs[m.Name] = bench.Micros(d)
	}

	if f.oneshots > 0 {
		prog.Step(steps, steps, "one-shot commands")
		if err := a.benchOneShot(ctx, rep, ref, name, popts, f.oneshots); err != nil {
			return err
		}
	}

	prog.Done()
	rep.LoadAverage, _ = bench.LoadAverage() // none off Linux
	out := cmd.OutOrStdout()
	if f.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteTable(out)
}

// benchOneShot times `tlspin send` through verifier name configured with
// opts against `tlspin fingerprint` and, when it is on the PATH, `openssl
// s_client` with nothing to send (a real peer's handshake), each a fresh
// process, against one loopback server presenting ref.
func (a *app) benchOneShot(ctx context.Context, rep *bench.Report, ref *compare.Reference, name string, opts verify.Options, n int) error {
	self := a.env.Self
	if self == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: one-shot commands need the tlspin executable: %w", err)
		}
		self = exe
	}
	srv, err := hsserver.ListenDrain(&tls.Config{Certificates: []tls.Certificate{ref.Leaf}, MinVersion: tls.VersionTLS13}, 10*time.Second)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer srv.Close()
	addr := srv.Addr()
	// The same verifier, found and pinned as here.
	send := []string{self, "--log-level", "error"}
	for _, d := range a.g.pluginDirs {
		send = append(send, "--plugin-dir", d)
	}
	for _, p := range a.g.pluginSHA256 {
		send = append(send, "--plugin-sha256", p)
	}
	for _, e := range a.g.pluginEnv {
		send = append(send, "--plugin-env", e)
	}
	if a.g.checksumFile != "" {
		send = append(send, "--plugin-checksums", a.g.checksumFile)
	}
	send = append(send, "send", "--no-reply", "--verifier", name, "--server-name", ref.ServerName)
	for k, vs := range opts {
		for _, v := range vs {
			send = append(send, "--opt", k+"="+v)
		}
	}
	send = append(send, addr, "x")
	fp := []string{self, "--log-level", "error", "fingerprint", addr}
	argvs := [][]string{send, fp}
	if openssl, err := exec.LookPath("openssl"); err != nil {
		rep.NoOpenSSL = err.Error()
	} else {
		// An openssl that cannot (an old one, another TLS library's) is
		// reported, not allowed to cost the figures already measured.
		if sc, err := sClient(ctx, openssl, addr, ref.ServerName); err != nil {
			rep.NoOpenSSL = err.Error()
		} else {
			argvs = append(argvs, sc)
		}
	}
	med, err := bench.OneShot(ctx, n, argvs...)
	if err != nil {
		return err
	}
	var openssl time.Duration // 0: not run
	if len(med) == 3 {
		openssl = med[2]
	}
	rep.SetOneShot(med[0], med[1], openssl, n)
	return nil
}

// sClient returns the openssl s_client command the one-shots time, once
// a run of it has handshaken with addr, or why none could: the first of
// sClientArgs's that openssl takes.
func sClient(ctx context.Context, openssl, addr, serverName string) ([]string, error) {
	var first error
	for _, argv := range sClientArgs(openssl, addr, serverName) {
		_, err := bench.OneShot(ctx, 1, argv)
		if err == nil {
			return argv, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// sClientArgs are the openssl s_client commands the one-shots may time, in
// order of preference: a handshake with addr, as fingerprint's. Standard
// input is at its end, so s_client closes once the handshake is done. It
// does not verify, as fingerprint does not, and is told not to load the
// system's CA certificates either: by default it reads the whole bundle
// first, most of its time on a Debian machine (about 40 of 50 ms), which
// is not a handshake's cost. OpenSSL before 3.0 has no -no-CAstore (nor a
// store to skip).
func sClientArgs(openssl, addr, serverName string) [][]string {
	return [][]string{
		{openssl, "s_client", "-no-CAfile", "-no-CApath", "-no-CAstore", "-connect", addr, "-servername", serverName},
		{openssl, "s_client", "-no-CAfile", "-no-CApath", "-connect", addr, "-servername", serverName},
	}
}

// trustIn configures verifier name to trust ref, with its files in dir.
func trustIn(name string, ref *compare.Reference, dir string, desc *verify.Description) (compare.Trust, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return compare.Trust{}, fmt.Errorf("bench: %w", err)
	}
	return compare.TrustReference(name, ref, dir, desc)
}
