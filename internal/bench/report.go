package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Mode names used by Report.
const (
	InProcess = "in-process"
	FloorMode = "floor"
	Plugin    = "plugin"
	Cached    = "plugin+cache"
)

// Report is one bench run: handshakes per second and latencies for
// in-process verification, the floor (in process, after one round trip to
// cat: type Floor), plugin verification without and with the verdict
// cache, as ratios to in-process measured in the same run.
type Report struct {
	Verifier    string  `json:"verifier"`
	Key         string  `json:"key"`
	ChainLength int     `json:"chain_length"`
	DurationS   float64 `json:"duration_s"`
	Concurrency int     `json:"concurrency"`
	GOMAXPROCS  int     `json:"gomaxprocs"`

	InProcessHsPerS float64 `json:"inprocess_hs_per_s"`
	PluginHsPerS    float64 `json:"plugin_hs_per_s"`
	CachedHsPerS    float64 `json:"cached_hs_per_s"`
	PluginRatio     float64 `json:"plugin_ratio"`
	CachedRatio     float64 `json:"cached_ratio"`
	// PluginRatioRounds is plugin_ratio in each round, from the slices
	// that ran side by side (bench.Result.PerRound): its spread is the
	// run's own measure of its noise.
	PluginRatioRounds []float64 `json:"plugin_ratio_rounds,omitempty"`

	// The floor: what any verifier in another process would cost here
	// (type Floor). FloorRatio is what plugin_ratio cannot exceed but
	// for noise; the plugin's part of its cost is the distance between
	// them. NoFloor, when set, says why the floor was not measured (an
	// external verifier has no in-process form to ask after cat; no cat
	// on the PATH); its figures are then 0.
	FloorHsPerS float64 `json:"floor_hs_per_s"`
	FloorRatio  float64 `json:"floor_ratio"`
	// FloorRatioRounds is floor_ratio in each round, as
	// PluginRatioRounds.
	FloorRatioRounds []float64 `json:"floor_ratio_rounds,omitempty"`
	FloorP50Us       float64   `json:"floor_p50_us"`
	FloorP99Us       float64   `json:"floor_p99_us"`
	FloorVerifyUs    float64   `json:"floor_verify_us"`
	NoFloor          string    `json:"no_floor,omitempty"`

	InProcessP50Us float64 `json:"inprocess_p50_us"`
	InProcessP99Us float64 `json:"inprocess_p99_us"`
	PluginP50Us    float64 `json:"plugin_p50_us"`
	PluginP99Us    float64 `json:"plugin_p99_us"`
	CachedP50Us    float64 `json:"cached_p50_us"`
	CachedP99Us    float64 `json:"cached_p99_us"`

	// CPU time per handshake, in µs, of each mode, while it ran (Linux;
	// absent where it could not be read): this process's (both ends of
	// the handshake, and the host's side of the verification), and the
	// peer process's (cat for the floor, the plugin process). Throughput
	// moves with the machine's speed; what a crossing costs in CPU is the
	// part of the plugin's that is ours: its peer CPU against cat's, its
	// own against the floor's.
	InProcessCPUUs  float64 `json:"inprocess_cpu_us_per_hs,omitempty"`
	FloorCPUUs      float64 `json:"floor_cpu_us_per_hs,omitempty"`
	FloorPeerCPUUs  float64 `json:"floor_peer_cpu_us_per_hs,omitempty"`
	PluginCPUUs     float64 `json:"plugin_cpu_us_per_hs,omitempty"`
	PluginPeerCPUUs float64 `json:"plugin_peer_cpu_us_per_hs,omitempty"`
	CachedCPUUs     float64 `json:"cached_cpu_us_per_hs,omitempty"`
	CachedPeerCPUUs float64 `json:"cached_peer_cpu_us_per_hs,omitempty"`

	// Median latency of one Verify call, outside any handshake.
	InProcessVerifyUs float64 `json:"inprocess_verify_us"`
	PluginVerifyUs    float64 `json:"plugin_verify_us"`
	CachedVerifyUs    float64 `json:"cached_verify_us"`

	// PluginLaunchMs is the median time from starting a plugin process
	// until it is configured: its handshake line, the channel (over
	// go-plugin, AutoMTLS where the kernel cannot vouch for the socket:
	// not on Linux), Describe unless the host knows the answer (its own
	// build's tlspin-builtins), and Configure.
	PluginLaunchMs    float64 `json:"plugin_launch_ms"`
	PluginLaunchMinMs float64 `json:"plugin_launch_min_ms"`
	Launches          int     `json:"launches"`

	// One-shot commands, run in turns against the same loopback server,
	// each the median wall time from exec to exit: `tlspin send` through
	// the verifier (its plugin started and stopped), and `tlspin
	// fingerprint` (the same TLS handshake, no plugin); OneShotRatio is
	// send over fingerprint.
	SendOneShotMs        float64 `json:"send_oneshot_ms"`
	FingerprintOneShotMs float64 `json:"fingerprint_oneshot_ms"`
	OneShotRatio         float64 `json:"oneshot_ratio"`
	OneShots             int     `json:"oneshots"`

	// OpenSSLOneShotMs is a real peer's one-shot in the same turns:
	// `openssl s_client` handshaking with the same server and sending
	// nothing, as fingerprint does; SendOpenSSLRatio is send over it.
	// Both are 0, and NoOpenSSL says why, when openssl was not run.
	OpenSSLOneShotMs float64 `json:"openssl_oneshot_ms"`
	SendOpenSSLRatio float64 `json:"send_openssl_ratio"`
	NoOpenSSL        string  `json:"no_openssl,omitempty"`

	// NoInProcess, when set, says why there is no in-process mode (an
	// external verifier); the in-process figures and ratios are then 0.
	NoInProcess string `json:"no_inprocess,omitempty"`

	// CacheHitRatio is the share of cached-mode verifications answered
	// from the cache; 0 when the verifier's verdicts carry no cache_for.
	CacheHitRatio float64 `json:"cache_hit_ratio"`

	// LoadAverage is the machine's load over 1, 5 and 15 minutes at the
	// end of the run (LoadAverage), absent where it cannot be read: the
	// figures move with what else the machine does.
	LoadAverage []float64 `json:"load_average,omitempty"`
}

// Schema is the version of the JSON document a Report marshals to; it
// changes when a field changes meaning or goes away, not when one is added.
const Schema = 1

// MarshalJSON writes the report with its schema version first.
func (rep Report) MarshalJSON() ([]byte, error) {
	type fields Report // without this method
	return json.Marshal(struct {
		Schema int `json:"schema"`
		fields
	}{Schema, fields(rep)})
}

// Summarize fills the handshake figures of rep from the results of the
// in-process, plugin and cached modes, in that order.
func (rep *Report) Summarize(inproc, plugin, cached Result) {
	rep.InProcessHsPerS = round2(inproc.PerSecond)
	rep.PluginHsPerS = round2(plugin.PerSecond)
	rep.CachedHsPerS = round2(cached.PerSecond)
	if inproc.PerSecond > 0 {
		rep.PluginRatio = round3(plugin.PerSecond / inproc.PerSecond)
		rep.CachedRatio = round3(cached.PerSecond / inproc.PerSecond)
	}
	rep.PluginRatioRounds = roundRatios(plugin, inproc)
	rep.InProcessCPUUs, _ = cpuPerHandshake(inproc)
	rep.PluginCPUUs, rep.PluginPeerCPUUs = cpuPerHandshake(plugin)
	rep.CachedCPUUs, rep.CachedPeerCPUUs = cpuPerHandshake(cached)
	rep.InProcessP50Us, rep.InProcessP99Us = Micros(inproc.P50), Micros(inproc.P99)
	rep.PluginP50Us, rep.PluginP99Us = Micros(plugin.P50), Micros(plugin.P99)
	rep.CachedP50Us, rep.CachedP99Us = Micros(cached.P50), Micros(cached.P99)
}

// SummarizeFloor fills the floor's handshake figures of rep from its
// result and the in-process mode's.
func (rep *Report) SummarizeFloor(inproc, floor Result) {
	rep.FloorHsPerS = round2(floor.PerSecond)
	if inproc.PerSecond > 0 {
		rep.FloorRatio = round3(floor.PerSecond / inproc.PerSecond)
	}
	rep.FloorRatioRounds = roundRatios(floor, inproc)
	rep.FloorCPUUs, rep.FloorPeerCPUUs = cpuPerHandshake(floor)
	rep.FloorP50Us, rep.FloorP99Us = Micros(floor.P50), Micros(floor.P99)
}

// cpuPerHandshake is r's CPU time and its peer's per handshake, in µs; 0
// for one unknown.
func cpuPerHandshake(r Result) (self, peer float64) {
	per := func(d time.Duration) float64 {
		if d < 0 || r.Handshakes == 0 {
			return 0
		}
		return Micros(d / time.Duration(r.Handshakes))
	}
	return per(r.CPU), per(r.PeerCPU)
}

// roundRatios is r over base in each round both ran, or nil.
func roundRatios(r, base Result) []float64 {
	n := min(len(r.PerRound), len(base.PerRound))
	if n == 0 {
		return nil
	}
	out := make([]float64, n)
	for i := range out {
		if base.PerRound[i] > 0 {
			out[i] = round3(r.PerRound[i] / base.PerRound[i])
		}
	}
	return out
}

// SetLaunches records plugin launch times.
func (rep *Report) SetLaunches(ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rep.Launches = len(s)
	rep.PluginLaunchMs = millis(Quantile(s, 0.5))
	rep.PluginLaunchMinMs = millis(s[0])
}

// WriteTable writes the report for a terminal.
func (rep *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "%s, %s keys, chain of %d, full TLS 1.3 handshakes on loopback, %d clients, GOMAXPROCS %d, %.1fs per mode\n\n",
		rep.Verifier, rep.Key, rep.ChainLength, rep.Concurrency, rep.GOMAXPROCS, rep.DurationS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "mode\thandshakes/s\tratio\tp50 µs\tp99 µs\tone Verify µs\tCPU µs/hs\tpeer's µs/hs\t\n")
	rows := []struct {
		name          string
		hs, ratio     float64
		p50, p99, vfy float64
		cpu, peerCPU  float64
	}{
		{InProcess, rep.InProcessHsPerS, 1, rep.InProcessP50Us, rep.InProcessP99Us, rep.InProcessVerifyUs, rep.InProcessCPUUs, 0},
		{FloorMode, rep.FloorHsPerS, rep.FloorRatio, rep.FloorP50Us, rep.FloorP99Us, rep.FloorVerifyUs, rep.FloorCPUUs, rep.FloorPeerCPUUs},
		{Plugin, rep.PluginHsPerS, rep.PluginRatio, rep.PluginP50Us, rep.PluginP99Us, rep.PluginVerifyUs, rep.PluginCPUUs, rep.PluginPeerCPUUs},
		{Cached, rep.CachedHsPerS, rep.CachedRatio, rep.CachedP50Us, rep.CachedP99Us, rep.CachedVerifyUs, rep.CachedCPUUs, rep.CachedPeerCPUUs},
	}
	switch {
	case rep.NoInProcess != "":
		rows = rows[2:]
	case rep.NoFloor != "":
		rows = slices.Delete(rows, 1, 2)
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.0f\t%.0f\t%.2f\t%s\t%s\t\n", r.name, r.hs, r.ratio, r.p50, r.p99, r.vfy, orDash(r.cpu), orDash(r.peerCPU))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.PluginRatioRounds) > 0 {
		fmt.Fprintf(w, "\nplugin ratio by round:%s\n", fmtRatios(rep.PluginRatioRounds))
	}
	if len(rep.FloorRatioRounds) > 0 {
		fmt.Fprintf(w, "floor ratio by round: %s\n", fmtRatios(rep.FloorRatioRounds))
	}
	switch {
	case rep.NoInProcess != "":
		fmt.Fprintf(w, "\nno in-process mode: %s\n", rep.NoInProcess)
	case rep.NoFloor != "":
		fmt.Fprintf(w, "\nno floor: %s\n", rep.NoFloor)
	default:
		fmt.Fprintf(w, "\nfloor: in process, after one round trip to cat on pipes: the least any verifier in another process costs here\n")
	}
	fmt.Fprintf(w, "\nplugin launch (process start until configured): median %.1f ms, min %.1f ms over %d launches\n",
		rep.PluginLaunchMs, rep.PluginLaunchMinMs, rep.Launches)
	if rep.OneShots > 0 {
		fmt.Fprintf(w, "one-shot commands (median of %d, in turns): send %.1f ms, fingerprint %.1f ms, ratio %.2f\n",
			rep.OneShots, rep.SendOneShotMs, rep.FingerprintOneShotMs, rep.OneShotRatio)
		if rep.NoOpenSSL != "" {
			fmt.Fprintf(w, "no openssl one-shot: %s\n", rep.NoOpenSSL)
		} else {
			fmt.Fprintf(w, "openssl s_client, the same handshake: %.1f ms; send is %.2f times that\n", rep.OpenSSLOneShotMs, rep.SendOpenSSLRatio)
		}
	}
	if len(rep.LoadAverage) == 3 {
		fmt.Fprintf(w, "load average at the end: %.2f %.2f %.2f (1, 5, 15 minutes)\n", rep.LoadAverage[0], rep.LoadAverage[1], rep.LoadAverage[2])
	}
	if rep.CacheHitRatio == 0 {
		fmt.Fprintf(w, "cache: %s's verdicts carry no cache_for, so plugin+cache asked the plugin every time\n", rep.Verifier)
	} else {
		fmt.Fprintf(w, "cache: %.1f%% of verifications answered from the verdict cache\n", 100*rep.CacheHitRatio)
	}
	return nil
}

// orDash prints a CPU time per handshake, or "-" for none (unknown, or
// no peer process).
func orDash(us float64) string {
	if us == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", us)
}

// fmtRatios shows a few rounds' ratios one by one, and more (the default
// slices make dozens) as their median and middle half.
func fmtRatios(rs []float64) string {
	if len(rs) > maxRoundsShown {
		s := slices.Clone(rs)
		slices.Sort(s)
		return fmt.Sprintf(" median %.3f, middle half %.3f-%.3f, of %d rounds", Quantile(s, 0.5), Quantile(s, 0.25), Quantile(s, 0.75), len(s))
	}
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, " %.3f", r)
	}
	return b.String()
}

// maxRoundsShown is the most rounds whose ratios the table lists.
const maxRoundsShown = 8

// Micros returns d in microseconds, to two decimals.
func Micros(d time.Duration) float64 { return round2(float64(d) / float64(time.Microsecond)) }

func millis(d time.Duration) float64 { return round2(float64(d) / float64(time.Millisecond)) }

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
