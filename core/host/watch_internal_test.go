package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/cache"
	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// lateWatch is a plugin whose policy the test changes, and whose watch is
// acknowledged only when the test says: until then it has no subscriber,
// and its changes reach no one.
type lateWatch struct {
	allow atomic.Bool
	acked chan struct{} // WatchPolicy returns once closed
}

func (f *lateWatch) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{Name: "late"}, nil
}

func (f *lateWatch) Configure(context.Context, *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	return &verify.ConfigureResponse{}, nil
}

func (f *lateWatch) Verify(context.Context, *verify.Request) (*verify.Verdict, error) {
	return &verify.Verdict{Allow: f.allow.Load(), Reason: "listed", CacheFor: time.Minute}, nil
}

func (f *lateWatch) Commit(context.Context, *verify.Request) (*verify.CommitResponse, error) {
	return &verify.CommitResponse{}, nil
}

func (f *lateWatch) WatchPolicy(ctx context.Context) (<-chan verify.PolicyChange, error) {
	<-f.acked
	ch := make(chan verify.PolicyChange)
	context.AfterFunc(ctx, func() { close(ch) })
	return ch, nil
}

// dying is the lifecycle of a process that exits when the test says,
// and records whether the host killed it. As for a real process, a
// SIGKILL the host sent first hides the process's own end (exitStatus).
type dying struct{ dead, killed, killedFirst atomic.Bool }

func (d *dying) exited() bool { return d.dead.Load() }
func (d *dying) exitStatus() error {
	if d.dead.Load() && !d.killedFirst.Load() {
		return errors.New("signal: killed")
	}
	return nil
}
func (d *dying) kill() {
	d.killedFirst.Store(d.killedFirst.Load() || !d.dead.Load())
	d.killed.Store(true)
}
func (*dying) stop() {}

// alive is the lifecycle of a process that never exits.
type alive struct{}

func (alive) exited() bool      { return false }
func (alive) exitStatus() error { return nil }
func (alive) kill()             {}
func (alive) stop()             {}

// TestChangeBeforeTheWatchIsNotLost: an instance serves before its policy
// watch is up. A verdict cached then, and a change made before the plugin
// subscribed (an allowlist reloaded), which no one hears of: the verdict
// is dropped once the watch is up, not kept for its minute.
func TestChangeBeforeTheWatchIsNotLost(t *testing.T) {
	p := idlePlugin(t, "late", Config{})
	f := &lateWatch{acked: make(chan struct{})}
	f.allow.Store(true)
	c := cache.New(cache.Config{})
	m := c.Wrap("late", p)
	p.install(&instance{v: f, life: alive{}, pid: 1, started: time.Now()})

	req := &verify.Request{PeerChain: [][]byte{[]byte("leaf")}, Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:443"}
	v, err := m.Verify(t.Context(), req)
	if err != nil || !v.Allow {
		t.Fatalf("before the change: %+v, %v; want an allow", v, err)
	}
	if s := c.Stats(); s.Stores != 1 {
		t.Fatalf("the allow was not cached: %+v", s)
	}
	f.allow.Store(false) // the list is reloaded; nobody subscribed yet
	close(f.acked)       // the plugin subscribes and acknowledges
	p.Close()            // waits for the watch to end
	if s := c.Stats(); s.Entries != 0 {
		t.Fatalf("the allow cached before the watch was up outlived a change made then: %+v", s)
	}
}

// endingWatch is a plugin whose policy watch ends as the test says: it
// fails to start with err, or, with err nil, is acknowledged and then
// ends when end is closed.
type endingWatch struct {
	lateWatch
	err error
	end chan struct{}
	why error // what WatchEnded says once the watch ended
}

func (f *endingWatch) WatchEnded() error { return f.why }

func (f *endingWatch) WatchPolicy(ctx context.Context) (<-chan verify.PolicyChange, error) {
	if f.err != nil {
		return nil, f.err
	}
	ch := make(chan verify.PolicyChange)
	go func() {
		select {
		case <-f.end:
		case <-ctx.Done():
		}
		close(ch)
	}()
	return ch, nil
}

// TestLostWatch: a watch that ends while its instance is in service, or
// fails to start, would leave the member's verdicts cached with nothing
// to drop them when the policy changes (an allowlist edited), for their
// minute. The verdicts are dropped, and the instance is taken out of
// service to be restarted with a new watch. Only a plugin that says it
// reports no changes is served without one, its verdicts kept.
func TestLostWatch(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		why      error // WatchEnded's
		dies     bool  // the process exits as its watch ends
		wantLost bool
		wantErr  string // why the instance failed
	}{
		{"watch ended", nil, nil, false, true, "policy watch: it ended"},
		// The direct client says why (WatchEnded).
		{"watch ended, saying why", nil, errors.New("direct: malformed answer from verifier plugin: an answer to request 2 where request 1 was asked"), false, true,
			"policy watch: it ended: direct: malformed answer from verifier plugin: an answer to request 2 where request 1 was asked"},
		{"watch failed", errors.New("rpc: verifier plugin unreachable"), nil, false, true, "policy watch: rpc: verifier plugin unreachable"},
		{"no changes to report", fmt.Errorf("rpc: %w", verify.ErrNoPolicyWatch), nil, false, false, ""},
		// A crash ends the watch first, in the middle of the exit: the
		// instance goes out of service at once (reportExit then says how
		// the process ended).
		{"plugin died", nil, nil, true, true, "(pid 1): policy watch: it ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncbuf.Buffer
			p := idlePlugin(t, "ending", Config{MaxBackoff: time.Hour, Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})})
			f := &endingWatch{lateWatch: lateWatch{acked: make(chan struct{})}, err: tt.err, end: make(chan struct{}), why: tt.why}
			f.allow.Store(true)
			c := cache.New(cache.Config{})
			m := c.Wrap("ending", p)
			lost := make(chan struct{})
			p.OnPolicyChange(func(ch verify.PolicyChange) {
				if ch.Reason == "plugin failed" {
					close(lost)
				}
			})
			life := &dying{}
			inst := &instance{v: f, life: life, pid: 1, started: time.Now()}
			p.install(inst)

			req := &verify.Request{PeerChain: [][]byte{[]byte("leaf")}, Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:443"}
			// A watch that fails fails as it starts, in a goroutine of
			// its own: the instance may be out of service before this
			// call (seen under load), and the call is refused then.
			if v, err := m.Verify(t.Context(), req); (err != nil || !v.Allow) && tt.err == nil {
				t.Fatalf("before the watch ended: %+v, %v; want an allow", v, err)
			}
			if tt.dies {
				life.dead.Store(true)
			}
			close(f.end)
			// Lost within 10 s on a loaded machine; not within 1 s, for
			// a plugin without changes.
			within := time.Second
			if tt.wantLost {
				within = 10 * time.Second
			}
			select {
			case <-lost:
				if !tt.wantLost {
					t.Fatal("the watch of a plugin without changes was taken for lost")
				}
			case <-time.After(within):
				if tt.wantLost {
					t.Fatalf("the instance did not fail within %s of the watch ending", within)
				}
			}
			var inService bool
			for range 1000 { // watchExit notices a death within 50 ms
				p.mu.Lock()
				inService = p.cur == inst
				p.mu.Unlock()
				// fail takes the instance out of service, then logs why.
				logged := tt.wantErr == "" || strings.Contains(logs.String(), "verifier plugin failed")
				if !tt.wantLost || !inService && logged {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			failed, _, _ := strings.Cut(logs.String(), "\n") // the restarts' failures follow
			switch {
			case tt.wantErr == "" && failed != "":
				t.Errorf("the instance failed: %q", failed)
			case tt.wantErr != "" && !(strings.Contains(failed, "verifier plugin failed; restarting") && strings.Contains(failed, tt.wantErr)):
				t.Errorf("the instance failed with %q; want %q", failed, tt.wantErr)
			}
			// The instance is killed, which releases what it holds, and
			// how a process that exited on its own ended is told.
			if tt.wantLost && !wait.Until(10*time.Second, func() bool {
				return life.killed.Load() && (!tt.dies || strings.Contains(logs.String(), `process ended: pid=1 status="signal: killed"`))
			}) {
				t.Errorf("killed %v; want killed, and the exit told if it died; log:\n%s", life.killed.Load(), logs.String())
			}
			s := c.Stats()
			if tt.wantLost && (inService || s.Entries != 0) {
				t.Fatalf("after the watch was lost: instance in service %v, cached verdicts %d; want out of service, none", inService, s.Entries)
			}
			if !tt.wantLost && (!inService || s.Entries != 1) {
				t.Fatalf("without a watch to lose: instance in service %v, cached verdicts %d; want in service, 1", inService, s.Entries)
			}
		})
	}
}

// TestLostWatchDropsAtOnce: once a plugin's watch has ended, a change of
// its policy can no longer reach the cache, so the verdicts cached under
// the watch go as soon as it ends, and the instance is out of service by
// then: nothing it answers afterwards is cached, and what the drop asks
// (the open connections, again) waits for the instance that replaces it.
// It used to be given 250 ms to be seen exiting first, and served
// meanwhile: a plugin that died, asked in its exit, failed the questions
// and closed connections its successor allows.
func TestLostWatchDropsAtOnce(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"watch ended", nil},
		{"watch failed", errors.New("rpc: verifier plugin unreachable")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := idlePlugin(t, "ending", Config{MaxBackoff: time.Hour})
			f := &endingWatch{lateWatch: lateWatch{acked: make(chan struct{})}, err: tt.err, end: make(chan struct{})}
			f.allow.Store(true)
			c := cache.New(cache.Config{})
			m := c.Wrap("ending", p)
			// Whether the instance was out of service at each drop.
			dropped := make(chan bool, 8)
			p.OnPolicyChange(func(ch verify.PolicyChange) {
				if ch.Reason != "policy watch started" {
					p.mu.Lock()
					dropped <- p.cur == nil
					p.mu.Unlock()
				}
			})
			inst := &instance{v: f, life: &dying{}, pid: 1, started: time.Now()}
			if tt.err == nil {
				p.install(inst)
				req := &verify.Request{PeerChain: [][]byte{[]byte("leaf")}, Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:443"}
				if v, err := m.Verify(t.Context(), req); err != nil || !v.Allow {
					t.Fatalf("before the watch ended: %+v, %v; want an allow", v, err)
				}
			}
			if tt.err == nil {
				close(f.end)
			} else {
				p.install(inst)
			}
			select {
			case out := <-dropped:
				if !out {
					t.Error("verdicts dropped while the instance whose watch ended was still in service")
				}
				if n := c.Stats().Entries; n != 0 {
					t.Errorf("%d verdicts cached after the drop", n)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("verdicts never dropped")
			}
		})
	}
}

// idlePlugin is a Plugin with no instance yet, for a test to install one;
// it is closed when the test ends.
func idlePlugin(t *testing.T, name string, cfg Config) *Plugin {
	cfg.defaults()
	p := &Plugin{spec: Spec{Name: name}, cfg: cfg, log: cfg.Logger, desc: &verify.Description{Name: name},
		ready: make(chan struct{}), closeCh: make(chan struct{})}
	t.Cleanup(func() { p.Close() })
	return p
}

// failing is a plugin whose watch is up at once, that allows every peer
// for a minute, and fails as asked for the peer named "fail": it hangs
// past the verify timeout, or answers garbage.
type failing struct {
	lateWatch
	garbage bool
}

func (f *failing) Verify(ctx context.Context, req *verify.Request) (*verify.Verdict, error) {
	if req.ServerName != "fail" {
		return f.lateWatch.Verify(ctx, req)
	}
	if f.garbage {
		return nil, fmt.Errorf("%w: truncated field", rpc.ErrGarbage)
	}
	<-ctx.Done()
	return nil, fmt.Errorf("rpc: %w", ctx.Err())
}

// TestFailedPluginDropsCachedVerdicts: an instance taken out of service
// (it hung, answered garbage, or died between calls) has no watch any
// more, so no change of its policy (an allowlist edited) can reach the
// cache until a new instance runs, which may be never (a crash loop). The
// verdicts it cached go when it fails, as when its watch is lost: they
// used to be served for their whole cache time (up to a day) while the
// plugin could not start.
func TestFailedPluginDropsCachedVerdicts(t *testing.T) {
	tests := []struct {
		name    string
		garbage bool
		dies    bool // between calls, not in one
	}{
		{"hung", false, false},
		{"garbage", true, false},
		{"died", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Restarts fail (no executable), then wait an hour.
			p := idlePlugin(t, "failing", Config{VerifyTimeout: 200 * time.Millisecond, MaxBackoff: time.Hour})
			f := &failing{lateWatch: lateWatch{acked: make(chan struct{})}, garbage: tt.garbage}
			f.allow.Store(true)
			close(f.acked)
			c := cache.New(cache.Config{})
			m := c.Wrap("failing", p)
			life := &dying{}
			inst := &instance{v: f, life: life, pid: 1, started: time.Now()}
			p.install(inst)
			// The watch is up: its start drops what was cached before.
			if !wait.Until(10*time.Second, func() bool { return c.Stats().Invalidations > 0 }) {
				t.Fatal("the policy watch did not start")
			}
			req := &verify.Request{PeerChain: [][]byte{[]byte("leaf")}, ServerName: "listed", Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:443"}
			if v, err := m.Verify(t.Context(), req); err != nil || !v.Allow {
				t.Fatalf("before the failure: %+v, %v; want an allow", v, err)
			}
			if s := c.Stats(); s.Entries != 1 {
				t.Fatalf("the allow was not cached: %+v", s)
			}
			if tt.dies {
				life.dead.Store(true)
			} else {
				bad := *req
				bad.ServerName = "fail"
				if v, err := m.Verify(t.Context(), &bad); err == nil {
					t.Fatalf("a failing plugin gave %+v; want an error", v)
				}
			}
			if !wait.Until(10*time.Second, func() bool { return p.Pid() == 0 }) {
				t.Fatal("the instance is still in service")
			}
			if v, err := m.Verify(t.Context(), req); err == nil {
				t.Fatalf("with the plugin down, its cached verdict was served: %+v (cache %+v); want an error", v, c.Stats())
			}
		})
	}
}
