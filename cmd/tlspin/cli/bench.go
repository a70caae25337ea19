package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin/core/bench"
	"github.com/tlspin/tlspin/core/cache"
	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/compare"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	verifierreg "github.com/tlspin/tlspin/verifiers"
	"github.com/tlspin/tlspin/verifiers/builtin"
)

type benchFlags struct {
	verifier, key         string
	duration              time.Duration
	concurrency, launches int
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
  plugin         through its plugin process, every handshake asking it
  plugin+cache   through its plugin, behind the host's verdict cache

Modes run in turns within the same run, so ratios to in-process compare
like with like. Also reports the latency of one Verify call and how long a
plugin takes to launch (process start, go-plugin handshake with AutoMTLS,
Describe and Configure).`,
		Example: `  tlspin bench
  tlspin bench --verifier sha256pin --key rsa --duration 10s --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runBench(cmd, f) },
	}
	fs := c.Flags()
	fs.StringVar(&f.verifier, "verifier", "spkipin", "built-in verifier to measure (configured to trust the generated certificate)")
	fs.StringVar(&f.key, "key", "ecdsa", "key type of the certificates: ecdsa (P-256) or rsa (2048)")
	fs.DurationVar(&f.duration, "duration", 5*time.Second, "how long each mode is measured")
	fs.IntVar(&f.concurrency, "concurrency", 0, "clients handshaking at once (default 8 per CPU, enough to keep the CPUs busy: handshakes/s is a capacity figure)")
	fs.IntVar(&f.launches, "launches", 5, "plugin launches timed")
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

	// In process: the same verifier as a library, with its own files.
	iv, err := builtin.New(nil).Lookup(f.verifier)
	if err != nil {
		if errors.Is(err, verifierreg.ErrUnknown) {
			return usageError{err}
		}
		return err
	}
	desc, err := iv.Describe(ctx)
	if err != nil {
		return err
	}
	trust, err := trustIn(f.verifier, ref, filepath.Join(dir, "in-process"), desc)
	if err != nil {
		return err
	}
	if _, err := iv.Configure(ctx, &verify.ConfigureRequest{Options: trust.Options}); err != nil {
		return fmt.Errorf("bench: configure %s in process: %w", f.verifier, err)
	}
	if c, ok := iv.(interface{ Close() error }); ok {
		defer c.Close()
	}
	ptrust, err := trustIn(f.verifier, ref, filepath.Join(dir, "plugin"), desc)
	if err != nil {
		return err
	}

	rep := &bench.Report{
		Verifier:    f.verifier,
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
	steps := f.launches + 4
	for i := range f.launches {
		prog.Step(i+1, steps, "starting the plugin")
		t0 := time.Now()
		q, err := a.startPlugin(ctx, f.verifier, ptrust.Options)
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
	cached := vc.Wrap(f.verifier, p)
	prog.Timed(f.launches+1, steps, "handshakes, 3 modes", 3*f.duration)
	res, err := bench.Handshakes(ctx, bench.Config{
		Cert:        ref.Leaf,
		ServerName:  ref.ServerName,
		Duration:    f.duration,
		Concurrency: rep.Concurrency,
	},
		bench.Mode{Name: bench.InProcess, D: iv},
		bench.Mode{Name: bench.Plugin, D: p},
		bench.Mode{Name: bench.Cached, D: cached},
	)
	if err != nil {
		return err
	}
	rep.Summarize(res[0], res[1], res[2])
	if st := vc.Stats(); st.Hits+st.Misses > 0 {
		rep.CacheHitRatio = float64(int64(10000*float64(st.Hits)/float64(st.Hits+st.Misses))) / 10000
	}

	req := &verify.Request{PeerChain: ref.Leaf.Certificate, ServerName: ref.ServerName, Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:443"}
	for i, m := range []struct {
		d   bench.Decider
		out *float64
	}{{iv, &rep.InProcessVerifyUs}, {p, &rep.PluginVerifyUs}, {cached, &rep.CachedVerifyUs}} {
		prog.Step(f.launches+2+i, steps, "Verify latency")
		d, err := bench.VerifyLatency(ctx, m.d, req, f.samples)
		if err != nil {
			return err
		}
		*m.out = bench.Micros(d)
	}

	prog.Done()
	out := cmd.OutOrStdout()
	if f.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteTable(out)
}

// trustIn configures verifier name to trust ref, with its files in dir.
func trustIn(name string, ref *compare.Reference, dir string, desc *verify.Description) (compare.Trust, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return compare.Trust{}, fmt.Errorf("bench: %w", err)
	}
	t, err := compare.TrustReference(name, ref, dir, desc)
	if errors.Is(err, compare.ErrUnknownStrategy) {
		return t, usageError{err}
	}
	return t, err
}
