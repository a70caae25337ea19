// Package bench measures what verification costs a TLS connection: full
// TLS 1.3 handshakes on loopback, each verified by a decider (in process,
// through a plugin, through the verdict cache), and the latency of single
// Verify calls. It only measures; deciding what is fast enough is left to
// whoever reads the figures.
package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/hsserver"
)

// Mode is one way of verifying, measured under its name.
type Mode struct {
	Name string
	D    verify.Decider
	// Peer, if set, returns the process D asks (a plugin, cat), whose CPU
	// time is then counted (Result.PeerCPU); 0 when it has none now.
	Peer func() int
}

// Config says what to measure.
type Config struct {
	// Cert is the certificate (chain and key) the server presents.
	Cert tls.Certificate
	// ServerName is sent in the client hello and given to the decider.
	ServerName string
	// Duration is how long each mode is measured in total (default 1s).
	Duration time.Duration
	// Rounds splits each mode's Duration into slices run in turn with the
	// other modes, so that drift (other load, frequency scaling) hits every
	// mode alike (default: one per Slice of Duration, at least one).
	Rounds int
	// Concurrency is how many clients handshake at once (default 8 per
	// GOMAXPROCS: with fewer, the cores sit idle while handshakes wait for
	// the plugin's answer, and the figure measures that latency rather
	// than capacity; even in-process gains up to about 8 per core).
	Concurrency int
	// Warmup handshakes per mode before measuring (default 20).
	Warmup int
}

func (c *Config) defaults() {
	if c.Duration <= 0 {
		c.Duration = time.Second
	}
	if c.Rounds <= 0 {
		c.Rounds = max(1, int(c.Duration/Slice))
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency()
	}
	if c.Warmup <= 0 {
		c.Warmup = 20
	}
}

// Slice is how long each mode runs before the next takes its turn, by
// default. A machine's own drift comes in spells of a second or more (a
// neighbour's load on a shared host): with slices of 600 ms, a run's
// plugin_ratio moved by 0.04-0.06 (standard deviation over runs of one
// build), with slices of 30 ms by about 0.01 (docs/performance.md,
// "Tenth round"). A slice stays several handshakes long under load, and
// ends when its last handshake does.
const Slice = 30 * time.Millisecond

// Result is what one mode measured.
type Result struct {
	Name       string
	Handshakes int
	Elapsed    time.Duration
	// PerSecond is Handshakes / Elapsed.
	PerSecond float64
	// P50 and P99 are handshake latencies seen by the client, dial included.
	P50, P99 time.Duration
	// PerRound is the handshakes per second of each round's slice, in
	// order (Config.Rounds): how much the figure moved within the run.
	PerRound []float64
	// CPU is what this process used while the mode ran: both ends of
	// every handshake, and the host's side of each verification. PeerCPU
	// is what the mode's peer process used (Mode.Peer). Either is -1 when
	// it could not be read (off Linux; no peer; the peer changed).
	CPU, PeerCPU time.Duration
}

// ErrHandshake wraps a handshake that failed while measuring: every
// measured handshake must be allowed.
var ErrHandshake = errors.New("bench: handshake failed")

// Handshakes runs full TLS 1.3 handshakes (no session resumption) against a
// loopback server presenting cfg.Cert, verifying the server with each
// mode's decider in turn, and returns one Result per mode, in order.
func Handshakes(ctx context.Context, cfg Config, modes ...Mode) ([]Result, error) {
	cfg.defaults()
	if len(cfg.Cert.Certificate) == 0 {
		return nil, errors.New("bench: no server certificate")
	}
	srv, err := listen(cfg.Cert)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	addr := srv.Addr()

	clients := make([]*tls.Config, len(modes))
	for i, m := range modes {
		clients[i] = clientConfig(ctx, m.D, cfg.ServerName, addr, nil)
		// The warm-up commits what a verifier asks to record once the
		// handshake has succeeded, as send does: tofu then knows the
		// server, and every measured handshake is of a known peer. They
		// share a configuration, which records nothing.
		for range cfg.Warmup {
			var p pintls.Pending
			if _, err := handshake(ctx, addr, clientConfig(ctx, m.D, cfg.ServerName, addr, &p), &p); err != nil {
				return nil, fmt.Errorf("%w: mode %q (warm-up): %w", ErrHandshake, m.Name, err)
			}
		}
	}
	lat := make([][]time.Duration, len(modes))
	elapsed := make([]time.Duration, len(modes))
	perRound := make([][]float64, len(modes))
	used := make([]cpuUse, len(modes))
	slice := cfg.Duration / time.Duration(cfg.Rounds)
	for range cfg.Rounds {
		for i, m := range modes {
			before := readCPU(m)
			l, e, err := run(ctx, addr, clients[i], slice, cfg.Concurrency)
			if err != nil {
				return nil, fmt.Errorf("%w: mode %q: %w", ErrHandshake, m.Name, err)
			}
			used[i].add(before, readCPU(m))
			lat[i] = append(lat[i], l...)
			elapsed[i] += e
			perRound[i] = append(perRound[i], float64(len(l))/max(e.Seconds(), 1e-9))
		}
	}
	out := make([]Result, len(modes))
	for i, m := range modes {
		slices.Sort(lat[i])
		r := Result{Name: m.Name, Handshakes: len(lat[i]), Elapsed: elapsed[i], PerRound: perRound[i], CPU: used[i].self, PeerCPU: used[i].peer}
		if elapsed[i] > 0 {
			r.PerSecond = float64(len(lat[i])) / elapsed[i].Seconds()
		}
		r.P50, r.P99 = Quantile(lat[i], 0.50), Quantile(lat[i], 0.99)
		out[i] = r
	}
	return out, nil
}

// cpuReading is the CPU time used so far by this process and by a mode's
// peer process (which one: pid); a time is -1 when it could not be read.
type cpuReading struct {
	self, peer time.Duration
	pid        int
}

func readCPU(m Mode) cpuReading {
	r := cpuReading{self: -1, peer: -1}
	if d, err := selfCPU(); err == nil {
		r.self = d
	}
	if m.Peer != nil {
		if r.pid = m.Peer(); r.pid > 0 {
			if d, err := ProcessCPU(r.pid); err == nil {
				r.peer = d
			}
		}
	}
	return r
}

// cpuUse adds up what a mode used over its slices; -1 once a slice's
// figure is unknown, or the peer was another process at its end (a
// plugin restarted) than at its start.
type cpuUse struct {
	self, peer time.Duration
}

func (u *cpuUse) add(before, after cpuReading) {
	u.self = addKnown(u.self, before.self, after.self)
	if before.pid != after.pid {
		u.peer = -1
	}
	u.peer = addKnown(u.peer, before.peer, after.peer)
}

func addKnown(sum, before, after time.Duration) time.Duration {
	if sum < 0 || before < 0 || after < before {
		return -1
	}
	return sum + after - before
}

// run handshakes with n clients for d and returns every latency.
func run(ctx context.Context, addr string, c *tls.Config, d time.Duration, n int) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		all      []time.Duration
		first    error
		wg       sync.WaitGroup
		start    = time.Now()
		deadline = start.Add(d)
	)
	for range n {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(deadline) && ctx.Err() == nil {
				l, err := handshake(ctx, addr, c, nil)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
					return
				}
				mine = append(mine, l)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if first != nil {
		return nil, 0, first
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	return all, time.Since(start), nil
}

// clientConfig is a TLS 1.3 client configuration verifying the server
// with d, its records to commit in p (nil: none).
func clientConfig(ctx context.Context, d verify.Decider, serverName, addr string, p *pintls.Pending) *tls.Config {
	c := pintls.ClientConfig(d, serverName, addr, nil, pintls.Options{Context: ctx, Pending: p})
	c.MinVersion, c.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	return c
}

// handshake dials addr, completes one handshake, commits p (c's Pending,
// or nil) once it has succeeded, and closes.
func handshake(ctx context.Context, addr string, c *tls.Config, p *pintls.Pending) (time.Duration, error) {
	t0 := time.Now()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	conn := tls.Client(raw, c)
	err = conn.HandshakeContext(ctx)
	l := time.Since(t0)
	if err == nil && p != nil {
		err = p.Commit(ctx)
	}
	conn.Close()
	return l, err
}

// listen starts the loopback server the clients handshake with.
func listen(cert tls.Certificate) (*hsserver.Server, error) {
	return hsserver.Listen(&tls.Config{
		Certificates:           []tls.Certificate{cert},
		MinVersion:             tls.VersionTLS13,
		SessionTicketsDisabled: true,
	}, 10*time.Second)
}

// Quantile returns the q-quantile (0..1) of sorted values (durations,
// ratios), or 0.
func Quantile[T time.Duration | float64](sorted []T, q float64) T {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[max(0, min(i, len(sorted)-1))]
}

// VerifyLatency calls d.Verify(req) n times (after a few warm-up calls)
// and returns the median latency. A verifier error is returned; a
// rejection is not an error.
func VerifyLatency(ctx context.Context, d verify.Decider, req *verify.Request, n int) (time.Duration, error) {
	if n <= 0 {
		n = 1
	}
	for range min(n, 10) {
		if _, err := d.Verify(ctx, req); err != nil {
			return 0, fmt.Errorf("bench: verify: %w", err)
		}
	}
	lat := make([]time.Duration, n)
	for i := range lat {
		t0 := time.Now()
		if _, err := d.Verify(ctx, req); err != nil {
			return 0, fmt.Errorf("bench: verify: %w", err)
		}
		lat[i] = time.Since(t0)
	}
	slices.Sort(lat)
	return Quantile(lat, 0.5), nil
}

// DefaultConcurrency is 8 clients per GOMAXPROCS (see Config.Concurrency).
func DefaultConcurrency() int { return 8 * runtime.GOMAXPROCS(0) }
