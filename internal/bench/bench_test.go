package bench_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/cache"
	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/bench"
	"github.com/tlspin/tlspin/internal/compare"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/verifiers/builtin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// setup is one verifier three ways, all trusting ref.
type setup struct {
	ref    *compare.Reference
	inproc verify.Verifier
	plugin *host.Plugin
	cached verify.Decider
	cache  *cache.Cache
	req    *verify.Request
}

// builtins finds the built-in verifiers as tlspin runs them:
// tlspin-builtins, of the same build, over the direct protocol.
func builtins(tb testing.TB) *host.Finder {
	self := testbin.Tlspin(tb)
	return &host.Finder{Builtins: builtin.New(nil).Names(), Self: self, SelfArgs: func(n string) []string { return []string{"__verifier", n} },
		BuiltinsExec: filepath.Join(filepath.Dir(self), "tlspin-builtins")}
}

// pluginConfig is the host's configuration for a benchmark's plugin: one
// P, as tlspin gives it, and BENCH_PLUGIN_ENV's variables.
func pluginConfig() host.Config {
	return host.Config{Logger: hclog.NewNullLogger(), Env: append([]string{"TLSPIN_LOG_LEVEL=error", "GOMAXPROCS=1"}, strings.Fields(os.Getenv("BENCH_PLUGIN_ENV"))...)}
}

func newSetup(tb testing.TB, name string, kt certs.KeyType) *setup {
	tb.Helper()
	ctx := context.Background()
	ref, err := compare.NewReference(kt)
	if err != nil {
		tb.Fatal(err)
	}
	iv, err := builtin.New(nil).Lookup(name)
	if err != nil {
		tb.Fatal(err)
	}
	desc, _ := iv.Describe(ctx)
	inDir, plDir := tb.TempDir(), tb.TempDir()
	tr, err := compare.TrustReference(name, ref, inDir, desc)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := iv.Configure(ctx, &verify.ConfigureRequest{Options: tr.Options}); err != nil {
		tb.Fatal(err)
	}
	ptr, err := compare.TrustReference(name, ref, plDir, desc)
	if err != nil {
		tb.Fatal(err)
	}
	found, err := builtins(tb).Find(name)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := host.Start(ctx, found.Spec(ptr.Options), pluginConfig())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	c := cache.New(cache.Config{})
	return &setup{
		ref: ref, inproc: iv, plugin: p, cache: c, cached: c.Wrap(name, p),
		req: &verify.Request{PeerChain: ref.Leaf.Certificate, ServerName: ref.ServerName, Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:443"},
	}
}

// Structural only: timing is measured, never asserted.
func TestHandshakes(t *testing.T) {
	s := newSetup(t, "sha256pin", certs.ECDSA)
	res, err := bench.Handshakes(context.Background(), bench.Config{
		Cert: s.ref.Leaf, ServerName: s.ref.ServerName, Duration: 60 * time.Millisecond, Rounds: 2, Concurrency: 2, Warmup: 2,
	},
		bench.Mode{Name: bench.InProcess, D: s.inproc},
		bench.Mode{Name: bench.Plugin, D: s.plugin, Peer: s.plugin.Pid},
		bench.Mode{Name: bench.Cached, D: s.cached, Peer: s.plugin.Pid},
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("got %d results, want 3", len(res))
	}
	for i, want := range []string{bench.InProcess, bench.Plugin, bench.Cached} {
		r := res[i]
		if r.Name != want || r.Handshakes == 0 || r.PerSecond <= 0 || r.P50 <= 0 || r.P99 < r.P50 {
			t.Errorf("result %d = %+v", i, r)
		}
		if len(r.PerRound) != 2 || slices.Min(r.PerRound) <= 0 {
			t.Errorf("result %d: per round %v, want 2 rates", i, r.PerRound)
		}
	}
	// CPU time: this process's in every mode; the plugin's when asked
	// (every handshake of the plugin mode asks it), none without a peer.
	if runtime.GOOS != "linux" {
		return
	}
	for i, r := range res {
		if r.CPU <= 0 {
			t.Errorf("result %d: CPU %v, want what the handshakes used", i, r.CPU)
		}
	}
	if res[0].PeerCPU != -1 || res[1].PeerCPU <= 0 || res[2].PeerCPU < 0 {
		t.Errorf("peer CPU: in process %v (want -1: none), plugin %v (want > 0), cached %v (want >= 0)", res[0].PeerCPU, res[1].PeerCPU, res[2].PeerCPU)
	}
}

// TestCPUPerHandshake: CPU times become µs per handshake in the JSON and
// the table; an unknown one (-1) is left out of the JSON and shown as a
// dash.
func TestCPUPerHandshake(t *testing.T) {
	var rep bench.Report
	ms := time.Millisecond
	rep.Summarize(bench.Result{Handshakes: 1000, CPU: 1300 * ms, PeerCPU: -1},
		bench.Result{Handshakes: 1000, CPU: 1400 * ms, PeerCPU: 50 * ms},
		bench.Result{Handshakes: 1000, CPU: -1, PeerCPU: -1})
	rep.SummarizeFloor(bench.Result{}, bench.Result{Handshakes: 500, CPU: 675 * ms, PeerCPU: 12500 * time.Microsecond})
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"inprocess_cpu_us_per_hs": 1300, "plugin_cpu_us_per_hs": 1400, "plugin_peer_cpu_us_per_hs": 50, "floor_cpu_us_per_hs": 1350, "floor_peer_cpu_us_per_hs": 25}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
	for _, k := range []string{"cached_cpu_us_per_hs", "cached_peer_cpu_us_per_hs"} {
		if v, ok := doc[k]; ok {
			t.Errorf("%s = %v, want it left out (unknown)", k, v)
		}
	}
	var out strings.Builder
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{bench.InProcess: "1300.0 -", bench.FloorMode: "1350.0 25.0", bench.Plugin: "1400.0 50.0", bench.Cached: "- -"}
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		if want, ok := rows[f[0]]; ok {
			if got := strings.Join(f[len(f)-2:], " "); got != want {
				t.Errorf("%s: CPU columns %q, want %q", f[0], got, want)
			}
			delete(rows, f[0])
		}
	}
	if len(rows) > 0 {
		t.Errorf("table lacks rows %v:\n%s", rows, out.String())
	}
}

// TestHandshakesWithTofu: tofu allows a new server only on condition of
// recording it once the handshake has succeeded. The warm-up records the
// bench's server in each mode's own store, as send would, so that every
// measured handshake is of a known peer: bench --verifier tofu failed
// every handshake once an allow nothing records became a rejection.
func TestHandshakesWithTofu(t *testing.T) {
	s := newSetup(t, "tofu", certs.ECDSA)
	res, err := bench.Handshakes(context.Background(), bench.Config{
		Cert: s.ref.Leaf, ServerName: s.ref.ServerName, Duration: 60 * time.Millisecond, Rounds: 2, Concurrency: 2, Warmup: 2,
	},
		bench.Mode{Name: bench.InProcess, D: s.inproc},
		bench.Mode{Name: bench.Plugin, D: s.plugin, Peer: s.plugin.Pid},
	)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Handshakes == 0 {
			t.Errorf("result %d = %+v, want handshakes", i, r)
		}
	}
}

func TestHandshakesRejected(t *testing.T) {
	s := newSetup(t, "sha256pin", certs.ECDSA)
	other, err := compare.NewReference(certs.ECDSA)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bench.Handshakes(context.Background(), bench.Config{Cert: other.Leaf, ServerName: other.ServerName, Duration: 10 * time.Millisecond, Warmup: 1},
		bench.Mode{Name: bench.Plugin, D: s.plugin})
	if err == nil || !strings.Contains(err.Error(), "plugin") {
		t.Fatalf("err = %v, want a failed handshake naming the mode", err)
	}
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{[]time.Duration{1}, 0.99, 1},
		{[]time.Duration{1, 2, 3}, 0.5, 2},
		{[]time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.99, 9},
		{[]time.Duration{1, 2, 3}, 1, 3},
	}
	for _, tt := range tests {
		if got := bench.Quantile(tt.in, tt.q); got != tt.want {
			t.Errorf("Quantile(%v, %v) = %v, want %v", tt.in, tt.q, got, tt.want)
		}
	}
}

func TestSetOneShot(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name                        string
		send, fingerprint, openssl  time.Duration
		noOpenSSL                   string
		wantRatio, wantOpenSSLRatio float64
		wantLine                    string
	}{
		{"with openssl", 45 * ms, 30 * ms, 40 * ms, "", 1.5, 1.125, "openssl s_client, the same handshake: 40.0 ms; send is 1.12 times that"},
		{"without openssl", 45 * ms, 30 * ms, 0, `exec: "openssl": executable file not found in $PATH`, 1.5, 0, `no openssl one-shot: exec: "openssl"`},
		{"nothing measured", 0, 0, 0, "", 0, 0, "send 0.0 ms, fingerprint 0.0 ms, ratio 0.00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := bench.Report{NoOpenSSL: tt.noOpenSSL}
			rep.SetOneShot(tt.send, tt.fingerprint, tt.openssl, 3)
			if rep.OneShotRatio != tt.wantRatio || rep.SendOpenSSLRatio != tt.wantOpenSSLRatio || rep.OneShots != 3 {
				t.Errorf("ratios %v, %v, %d one-shots; want %v, %v, 3", rep.OneShotRatio, rep.SendOpenSSLRatio, rep.OneShots, tt.wantRatio, tt.wantOpenSSLRatio)
			}
			var out strings.Builder
			if err := rep.WriteTable(&out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tt.wantLine) {
				t.Errorf("table lacks %q:\n%s", tt.wantLine, out.String())
			}
		})
	}
}

// TestTableFloor: the floor's row is shown when it was measured, and
// why not when it was not.
func TestTableFloor(t *testing.T) {
	tests := []struct {
		name        string
		rep         bench.Report
		row         bool
		note, ratio string
	}{
		{"measured", bench.Report{InProcessHsPerS: 1000}, true, "the least any verifier in another process costs here", "0.950"},
		{"no cat", bench.Report{InProcessHsPerS: 1000, NoFloor: "bench: no floor: cat not found"}, false, "no floor: bench: no floor: cat not found", ""},
		{"external", bench.Report{NoInProcess: "x is not built into tlspin"}, false, "no in-process mode", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.row {
				tt.rep.SummarizeFloor(bench.Result{PerSecond: 1000}, bench.Result{PerSecond: 950})
			}
			var out strings.Builder
			if err := tt.rep.WriteTable(&out); err != nil {
				t.Fatal(err)
			}
			hasRow := strings.Contains(out.String(), "  floor  ")
			if hasRow != tt.row || !strings.Contains(out.String(), tt.note) || (tt.row && !strings.Contains(out.String(), tt.ratio)) {
				t.Errorf("floor row %v (want %v), note %q, ratio %q:\n%s", hasRow, tt.row, tt.note, tt.ratio, out.String())
			}
		})
	}
}

// TestRatiosByRound: the ratio of each round is taken between the slices
// that ran side by side, and shown; none when the rounds are unknown.
func TestRatiosByRound(t *testing.T) {
	var rep bench.Report
	inproc := bench.Result{PerSecond: 150, PerRound: []float64{100, 200}}
	rep.Summarize(inproc, bench.Result{PerSecond: 140, PerRound: []float64{90, 190}}, bench.Result{PerSecond: 150})
	rep.SummarizeFloor(inproc, bench.Result{PerSecond: 150, PerRound: []float64{100, 0}})
	if !slices.Equal(rep.PluginRatioRounds, []float64{0.9, 0.95}) || !slices.Equal(rep.FloorRatioRounds, []float64{1, 0}) {
		t.Fatalf("by round: plugin %v, floor %v; want [0.9 0.95], [1 0]", rep.PluginRatioRounds, rep.FloorRatioRounds)
	}
	var out strings.Builder
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"plugin ratio by round: 0.900 0.950\n", "floor ratio by round:  1.000 0.000\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	// Many rounds are summed up: the median, and the quartiles around it.
	var base, many []float64
	for i := range 41 {
		base = append(base, 1000)
		many = append(many, float64(900+i*5)) // ratios 0.900, 0.905, ... 1.100
	}
	rep = bench.Report{}
	rep.Summarize(bench.Result{PerSecond: 1000, PerRound: base}, bench.Result{PerSecond: 1000, PerRound: many}, bench.Result{PerSecond: 1000})
	out.Reset()
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if want := "plugin ratio by round: median 1.000, middle half 0.950-1.050, of 41 rounds\n"; !strings.Contains(out.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, out.String())
	}
	rep = bench.Report{}
	rep.Summarize(bench.Result{PerSecond: 1}, bench.Result{PerSecond: 1}, bench.Result{})
	if rep.PluginRatioRounds != nil {
		t.Errorf("by round without rounds: %v", rep.PluginRatioRounds)
	}
}

// TestTableLoadAverage: the table says how busy the machine was, when
// the load could be read.
func TestTableLoadAverage(t *testing.T) {
	for _, tt := range []struct {
		load []float64
		want bool
	}{{[]float64{1.5, 2, 2.25}, true}, {nil, false}} {
		var out strings.Builder
		rep := bench.Report{LoadAverage: tt.load}
		if err := rep.WriteTable(&out); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(out.String(), "load average at the end: 1.50 2.00 2.25 (1, 5, 15 minutes)"); got != tt.want {
			t.Errorf("load %v: line shown %v, want %v:\n%s", tt.load, got, tt.want, out.String())
		}
	}
}

// pluginCPU returns the CPU time process pid has used, or -1 where it
// cannot be read (off Linux).
func pluginCPU(pid int) time.Duration {
	d, err := bench.ProcessCPU(pid)
	if err != nil {
		return -1
	}
	return d
}

// reportPluginCPU adds the plugin process's CPU time per op (Linux).
func reportPluginCPU(b *testing.B, pid int, before time.Duration) {
	after := pluginCPU(pid)
	if before < 0 || after < before || b.N == 0 {
		return
	}
	b.ReportMetric(float64(after-before)/1e3/float64(b.N), "plugin-cpu-µs/op")
}

// benchVerify times d.Verify. Besides the mean (ns/op), it reports the
// median of the last calls (p50-µs): on a VM, the rare call that waits
// for a halted vCPU raises the mean far above what most calls take, and
// the median is what tlspin bench reports.
func benchVerify(b *testing.B, d verify.Decider, req *verify.Request, pid int) {
	ctx := context.Background()
	if _, err := d.Verify(ctx, req); err != nil {
		b.Fatal(err)
	}
	before := time.Duration(-1)
	if pid > 0 {
		before = pluginCPU(pid)
	}
	last := make([]time.Duration, 1<<15) // allocated before the timer starts
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		v, err := d.Verify(ctx, req)
		last[n%len(last)] = time.Since(t0)
		n++
		if err != nil || !v.Allow {
			b.Fatalf("Verify = %+v, %v", v, err)
		}
	}
	if pid > 0 {
		reportPluginCPU(b, pid, before)
	}
	last = last[:min(n, len(last))]
	slices.Sort(last)
	b.ReportMetric(float64(bench.Quantile(last, 0.5).Nanoseconds())/1000, "p50-µs")
}

func BenchmarkVerify(b *testing.B) {
	for _, name := range []string{"md5pin", "spkipin"} {
		s := newSetup(b, name, certs.ECDSA)
		b.Run(name+"/in-process", func(b *testing.B) { benchVerify(b, s.inproc, s.req, 0) })
		b.Run(name+"/floor", func(b *testing.B) {
			f, err := bench.StartFloor(s.inproc)
			if err != nil {
				b.Skip(err)
			}
			defer f.Close()
			benchVerify(b, f, s.req, 0)
		})
		b.Run(name+"/plugin", func(b *testing.B) { benchVerify(b, s.plugin, s.req, s.plugin.Pid()) })
		b.Run(name+"/plugin-parallel", func(b *testing.B) {
			ctx := context.Background()
			before := pluginCPU(s.plugin.Pid())
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.plugin.Verify(ctx, s.req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportPluginCPU(b, s.plugin.Pid(), before)
		})
		b.Run(name+"/cached", func(b *testing.B) { benchVerify(b, s.cached, s.req, 0) })
	}
}

func BenchmarkHandshake(b *testing.B) {
	for _, kt := range []certs.KeyType{certs.ECDSA, certs.RSA} {
		s := newSetup(b, "spkipin", kt)
		for _, m := range []bench.Mode{{Name: bench.InProcess, D: s.inproc}, {Name: bench.Plugin, D: s.plugin}, {Name: bench.Cached, D: s.cached}} {
			b.Run(string(kt)+"/"+m.Name, func(b *testing.B) {
				var res []bench.Result
				// One b.Loop iteration is a timed batch of handshakes;
				// the figure that matters is the handshakes/s metric.
				for b.Loop() {
					r, err := bench.Handshakes(context.Background(), bench.Config{Cert: s.ref.Leaf, ServerName: s.ref.ServerName, Duration: 200 * time.Millisecond, Warmup: 5}, m)
					if err != nil {
						b.Fatal(err)
					}
					res = append(res, r...)
				}
				var hs, el float64
				for _, r := range res {
					hs += float64(r.Handshakes)
					el += r.Elapsed.Seconds()
				}
				b.ReportMetric(hs/el, "handshakes/s")
			})
		}
	}
}

// BenchmarkLaunch times starting a built-in as tlspin does: exec of
// tlspin-builtins, its handshake line on the inherited channel, and
// Configure; then Close. (core/host's benchmarks time the gRPC launches
// of other plugins.)
func BenchmarkLaunch(b *testing.B) {
	found, err := builtins(b).Find("sha256pin")
	if err != nil {
		b.Fatal(err)
	}
	spec := found.Spec(verify.Options{"pin": {strings.Repeat("ab", 32)}})
	var starts []time.Duration
	for b.Loop() {
		t0 := time.Now()
		p, err := host.Start(context.Background(), spec, pluginConfig())
		if err != nil {
			b.Fatal(err)
		}
		starts = append(starts, time.Since(t0))
		p.Close()
	}
	slices.Sort(starts)
	b.ReportMetric(float64(bench.Quantile(starts, 0.5).Microseconds())/1000, "start-ms-p50")
}
