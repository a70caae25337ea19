package host

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/tlspin/tlspin/core/direct"
	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/deadline"
)

var (
	// ErrClosed is returned by a Plugin that has been closed.
	ErrClosed = errors.New("host: verifier plugin closed")
	// ErrNotRunning is returned while a plugin is down and being restarted.
	ErrNotRunning = errors.New("host: verifier plugin not running")
	// ErrTimeout is returned when a plugin does not answer in time.
	ErrTimeout = errors.New("host: verifier plugin did not answer in time")
	// ErrCrashLoop is returned while a plugin keeps dying on start.
	ErrCrashLoop = errors.New("host: verifier plugin is crash-looping")
)

// Spec says what to launch.
type Spec struct {
	// Name is the verifier's name as the user gave it.
	Name string
	// Path and Args are the executable and its arguments.
	Path string
	Args []string
	// Options are sent to Configure after every (re)start.
	Options verify.Options
	// SHA256, if set, pins the executable's checksum; the open file hashed
	// is the one executed (OpenPinned), not go-plugin's SecureConfig.
	SHA256 []byte
	// Direct says the executable is tlspin-builtins, which speaks the
	// direct protocol (core/direct) instead of go-plugin's gRPC.
	Direct bool
	// Known, for a Direct spec, is what the plugin would answer to
	// Describe. tlspin-builtins runs only when it comes from the host's
	// own build (internal/launch checks that), so the host knows the
	// answer and the launch skips a round trip. Nil asks the plugin.
	Known *Known
}

// Known is a verifier's description, known to the host without asking.
type Known struct {
	Description verify.Description
	// Notifies says the verifier reports policy changes
	// (verify.PolicyNotifier).
	Notifies bool
}

// Config tunes a Plugin. Zero values get defaults.
type Config struct {
	Logger hclog.Logger
	// VerifyTimeout bounds one Verify call (default 5s).
	VerifyTimeout time.Duration
	// StartTimeout bounds the start of a plugin process: the launch
	// handshake, Describe and Configure together (default 10s).
	StartTimeout time.Duration
	// Env is the whole environment the plugin receives; the host's own
	// environment is not passed (go-plugin SkipHostEnv).
	Env []string
	// MaxBackoff caps the delay between restarts (default 5s).
	MaxBackoff time.Duration
	// AutoMTLS makes the channel go-plugin's mutual TLS even where the
	// kernel can vouch for the plugin's socket (rpc.HostCredentials), as
	// it is elsewhere: slower to launch and per call; for comparison.
	AutoMTLS bool
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.VerifyTimeout <= 0 {
		c.VerifyTimeout = 5 * time.Second
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 10 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
}

// crashLoopAfter is how many failed starts in a row make a crash loop.
const crashLoopAfter = 5

// healthyAfter is how long an instance must live for the backoff to reset.
const healthyAfter = 10 * time.Second

// Plugin is a supervised verifier plugin process. It is safe for
// concurrent use; one process serves every connection.
type Plugin struct {
	spec Spec
	cfg  Config
	log  hclog.Logger
	desc *verify.Description

	mu         sync.Mutex
	cur        *instance
	ready      chan struct{} // closed when cur is set or the plugin closes
	closed     bool
	failures   int
	lastErr    error
	needsChain bool
	restarts   int
	commits    atomic.Bool // a verdict asked for a commit (see install)
	watchers   []func(verify.PolicyChange)
	closeCh    chan struct{}
	wg         sync.WaitGroup
}

type instance struct {
	v       channel
	life    lifecycle
	pid     int
	started time.Time
	cancel  context.CancelFunc // ends the policy watch
	probing atomic.Bool        // a probe runs (Plugin.probe)
	// early is the answer to the Configure that spawn sent while the
	// process started (spawnDirect), or nil.
	early <-chan configured
}

// configured is the answer to a Configure.
type configured struct {
	cr  *verify.ConfigureResponse
	err error
}

// configure sends the user's options, opts, unless spawn already sent
// them (the spec's, which launch passes): then it waits for that answer,
// which the start timeout bounds.
func (i *instance) configure(ctx context.Context, opts verify.Options) (*verify.ConfigureResponse, error) {
	if i.early != nil {
		r := <-i.early
		return r.cr, r.err
	}
	return i.v.Configure(ctx, &verify.ConfigureRequest{Options: opts})
}

// channel is the host's end of the conversation with one plugin process:
// go-plugin's gRPC (rpc.Client) or the direct protocol of tlspin-builtins
// (direct.Client).
type channel interface {
	verify.Verifier
	verify.Committer
	WatchPolicy(ctx context.Context) (<-chan verify.PolicyChange, error)
}

// lifecycle is how one plugin process is watched and ended.
type lifecycle interface {
	// exited reports whether the process has exited.
	exited() bool
	// exitStatus is why it ended on its own (its exit status, or a
	// signal other than the host's SIGKILL), or nil while it runs, after
	// it exited 0 or when the host killed it.
	exitStatus() error
	// kill ends the process group at once and releases the channel.
	kill()
	// stop asks the plugin to exit, and ends the process group if it has
	// not within gracePeriod.
	stop()
}

// IsVerifierError reports whether err is the verifier's own answer, over
// either channel: a rejection, never a reason to restart the plugin.
func IsVerifierError(err error) bool {
	var g *rpc.RemoteError
	var d *direct.RemoteError
	return errors.As(err, &g) || errors.As(err, &d)
}

// Start launches the plugin, describes and configures it. An option the
// plugin's Describe does not declare, a missing required one or a repeated
// non-repeatable one is refused by the host before Configure, and any bad
// option is an error wrapping verify.ErrBadOption. A plugin that describes
// itself under another name than spec.Name is logged as a warning.
func Start(ctx context.Context, spec Spec, cfg Config) (*Plugin, error) {
	cfg.defaults()
	p := &Plugin{
		spec:    spec,
		cfg:     cfg,
		log:     cfg.Logger.ResetNamed(spec.Name),
		ready:   make(chan struct{}),
		closeCh: make(chan struct{}),
	}
	inst, desc, nc, err := p.launch(ctx)
	if err != nil {
		return nil, err
	}
	if desc.Name != spec.Name {
		p.log.Warn("verifier plugin calls itself by another name; options and logs go by the name it was started as",
			"started_as", spec.Name, "describes_itself_as", desc.Name, "path", spec.Path)
	}
	p.desc = desc
	p.needsChain = nc
	p.install(inst)
	return p, nil
}

// Describe returns what the plugin said of itself at start.
func (p *Plugin) Describe(context.Context) (*verify.Description, error) {
	d := *p.desc
	return &d, nil
}

// Name returns the name the plugin was started under.
func (p *Plugin) Name() string { return p.spec.Name }

// Pid returns the process id of the running plugin, or 0 while it is down.
func (p *Plugin) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return 0
	}
	return p.cur.pid
}

// Restarts returns how many times the plugin has been restarted.
func (p *Plugin) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// OnPolicyChange registers f to run whenever the plugin reports a policy
// change, fails or is restarted (a restarted plugin may have reloaded its
// policy), and when the watch of its changes starts or ends (a change made
// before it started, or after it ended, goes unreported; see
// watchPolicy). The verifier's own changes carry the epoch it gave them,
// never 0; those made by the host have epoch 0.
func (p *Plugin) OnPolicyChange(f func(verify.PolicyChange)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.watchers = append(p.watchers, f)
}

// Verify asks the plugin to decide on a peer, within the verify timeout.
// Any failure, including a crash, a hang or a malformed answer of the
// plugin, is an error: the caller must reject the peer (fail closed).
//
// The call waits for the plugin (while it restarts, or while all of
// tlspin-builtins' connections are busy) a verify timeout at most, then
// gives it one to answer. It runs on the caller's goroutine, bounded by
// these and by ctx: each hop to another goroutine costs a thread wake-up, tens
// of microseconds on a small VM, as much as the call itself
// (docs/performance.md). A plugin that runs past the verify timeout is
// replaced. One that a caller gave up on first is not known to be hung,
// so it is probed in the background on its own clock (probe): a hung
// plugin is found and replaced even when every caller gives up first.
//
// A request that reached no plugin (direct.ErrNotDelivered: its process
// died between calls, and the host had not seen it yet) is put to the
// instance that replaces it, within the same wait: nothing in it can have
// made the plugin fail, and the peer is not rejected for a crash it did
// not cause.
func (p *Plugin) Verify(ctx context.Context, req *verify.Request) (*verify.Verdict, error) {
	start := time.Now()
	inst, sent, err := p.instanceFor(ctx, p.cfg.VerifyTimeout, req)
	if errors.Is(err, errOversize) {
		return &verify.Verdict{Reason: fmt.Sprintf("verifier %q was not asked: %v", p.spec.Name, err)}, nil
	}
	if err != nil {
		return nil, err
	}
	v, timedOut, err := p.ask(ctx, p.cfg.VerifyTimeout-time.Since(start), inst, sent)
	if errors.Is(err, direct.ErrNotDelivered) && ctx.Err() == nil {
		p.judge(inst, v, timedOut, err) // takes inst out of service
		if inst, sent, err = p.instanceFor(ctx, p.cfg.VerifyTimeout-time.Since(start), req); err != nil {
			return nil, err
		}
		v, timedOut, err = p.ask(ctx, p.cfg.VerifyTimeout-time.Since(start), inst, sent)
	}
	if err != nil && !IsVerifierError(err) && deadline.Passed(ctx) {
		// The caller gave up first: the plugin is not known to be hung.
		p.probe(inst, sent)
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, fmt.Errorf("host: verifier %q: caller gave up waiting: %w", p.spec.Name, ctx.Err())
		}
		waited := time.Since(start)
		if dl, ok := ctx.Deadline(); ok {
			waited = dl.Sub(start)
		}
		if waited <= 0 {
			// A deadline of a nanosecond is over before the call starts.
			return nil, fmt.Errorf("%w: verifier %q was not asked: the caller's deadline had passed before the call (pid %d): %w", ErrTimeout, p.spec.Name, inst.pid, context.DeadlineExceeded)
		}
		if waited >= time.Millisecond {
			// Up to the millisecond: what was left of a 300 ms timeout
			// when the call started is a hair under it.
			waited = (waited + time.Millisecond - 1).Truncate(time.Millisecond)
		}
		return nil, fmt.Errorf("%w: verifier %q gave no verdict within %s (pid %d): %w", ErrTimeout, p.spec.Name, waited, inst.pid, context.DeadlineExceeded)
	}
	return p.judge(inst, v, timedOut, err)
}

// queue is a channel whose calls may wait for a free connection before
// they reach the plugin (direct.Client): the verify timeout then starts
// once a call holds one, so that a call queued behind other callers' slow
// but timely calls is not taken for a hung plugin.
type queue interface {
	VerifyWithin(ctx context.Context, req *verify.Request, wait, timeout time.Duration) (*verify.Verdict, error)
}

// ask puts req to inst within ctx, and reports whether the plugin had the
// whole verify timeout and did not answer in it. A call waits for the
// plugin (a restart, a free connection) a verify timeout at most in all:
// wait is what is left of it.
func (p *Plugin) ask(ctx context.Context, wait time.Duration, inst *instance, req *verify.Request) (*verify.Verdict, bool, error) {
	if q, ok := inst.v.(queue); ok {
		v, err := q.VerifyWithin(ctx, req, wait, p.cfg.VerifyTimeout)
		return v, errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, p.cfg.VerifyTimeout)
	defer cancel()
	v, err := inst.v.Verify(wctx, req)
	return v, err != nil && wctx.Err() != nil, err
}

// probe asks inst again about req, in the background and bounded by the
// verify timeout alone, after a caller gave up waiting for its answer; an
// instance that does not answer in time is replaced (judge). One probe runs
// at a time per instance. Verify has no side effects, so asking twice is
// harmless.
func (p *Plugin) probe(inst *instance, req *verify.Request) {
	if !inst.probing.CompareAndSwap(false, true) {
		return
	}
	if !p.track() {
		inst.probing.Store(false)
		return
	}
	go func() {
		defer p.wg.Done()
		defer inst.probing.Store(false)
		v, timedOut, err := p.ask(context.Background(), p.cfg.VerifyTimeout, inst, req)
		_, _ = p.judge(inst, v, timedOut, err)
	}()
}

// instanceFor returns the running instance, waiting for a restart while
// ctx allows and for wait at most, and req as that instance wants it:
// with the leaf alone unless the verifier asked for the chain.
func (p *Plugin) instanceFor(ctx context.Context, wait time.Duration, req *verify.Request) (*instance, *verify.Request, error) {
	inst, needsChain, err := p.get(ctx, wait)
	if err != nil {
		return nil, nil, err
	}
	if !needsChain && len(req.PeerChain) > 1 {
		r := *req
		r.PeerChain = req.PeerChain[:1]
		req = &r
	}
	if n := verify.RequestSize(req); n > verify.MaxRequestSize {
		return nil, nil, fmt.Errorf("%w: %d bytes of certificates and names exceed the %d a verifier is asked about", errOversize, n, verify.MaxRequestSize)
	}
	return inst, req, nil
}

// errOversize is instanceFor's error for a request too large for any
// channel to a plugin: sent anyway, it reached no plugin, which the host
// took for a broken plugin and restarted (twice: the request was put to
// the new process too), failing every verification in flight. It is not
// the plugin's fault, and Verify makes it a rejection.
var errOversize = errors.New("host: request too large")

// track counts a goroutine that Close must wait for; it reports false once
// the plugin is closed.
func (p *Plugin) track() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	return true
}

// judge turns what inst answered to a Verify call into a verdict or an
// error, and takes inst out of service if it hung (timedOut: it had the
// whole verify timeout and did not answer), died or answered garbage. A
// verifier's own error leaves it running, and so does a call that found
// every connection busy with other, timely calls.
func (p *Plugin) judge(inst *instance, v *verify.Verdict, timedOut bool, err error) (*verify.Verdict, error) {
	if err == nil && v == nil {
		err = fmt.Errorf("%w: no verdict", rpc.ErrGarbage)
	}
	dying := false
	switch {
	case err == nil:
		if v.Commit {
			// For the instances that replace this one (install).
			p.commits.Store(true)
		}
		return v, nil
	case IsVerifierError(err):
		return nil, fmt.Errorf("host: verifier %q: %w", p.spec.Name, err)
	case errors.Is(err, direct.ErrBusy):
		return nil, fmt.Errorf("%w: verifier %q (pid %d): %w; not restarting it: the calls holding them are within their time", ErrTimeout, p.spec.Name, inst.pid, err)
	case timedOut:
		err = fmt.Errorf("%w: verifier %q gave no verdict within %s (pid %d); restarting it", ErrTimeout, p.spec.Name, p.cfg.VerifyTimeout, inst.pid)
	default:
		// A connection that broke (ErrTransport) is most often a process
		// that is ending: its kill waits to see it end on its own.
		dying = errors.Is(err, direct.ErrTransport) || errors.Is(err, rpc.ErrTransport)
		err = fmt.Errorf("host: verifier %q (pid %d) failed: %w; restarting it", p.spec.Name, inst.pid, err)
	}
	p.retire(inst, err, dying)
	return nil, err
}

// Configure is not supported after Start: options are fixed for the life of
// the Plugin so that a restart reproduces the same policy.
func (p *Plugin) Configure(context.Context, *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	return nil, errors.New("host: a started plugin cannot be reconfigured")
}

var _ verify.Verifier = (*Plugin)(nil)

// Close kills the plugin process (and its process group) and waits for the
// supervisor to stop. It is safe to call more than once.
func (p *Plugin) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.closeCh)
	inst := p.cur
	p.cur = nil
	select {
	case <-p.ready:
	default:
		close(p.ready)
	}
	p.mu.Unlock()
	if inst != nil {
		inst.stop()
	}
	p.wg.Wait()
	return nil
}

// get returns the running instance, waiting for a restart while ctx
// allows and for wait at most.
func (p *Plugin) get(ctx context.Context, wait time.Duration) (*instance, bool, error) {
	var expired <-chan time.Time // made at the first wait
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, false, fmt.Errorf("%w: %q", ErrClosed, p.spec.Name)
		}
		if p.cur != nil {
			inst, nc := p.cur, p.needsChain
			p.mu.Unlock()
			return inst, nc, nil
		}
		ready, lastErr, failures := p.ready, p.lastErr, p.failures
		p.mu.Unlock()
		if expired == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-ready:
			continue
		case <-ctx.Done():
		case <-expired:
		}
		if failures >= crashLoopAfter {
			return nil, false, fmt.Errorf("%w: %q failed %d starts in a row; last error: %v", ErrCrashLoop, p.spec.Name, failures, lastErr)
		}
		return nil, false, fmt.Errorf("%w: %q is restarting (last error: %v)", ErrNotRunning, p.spec.Name, lastErr)
	}
}

// install makes inst current and starts watching it.
func (p *Plugin) install(inst *instance) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		inst.kill()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	inst.cancel = cancel
	if e, ok := inst.v.(commitExpecter); ok && p.commits.Load() {
		// A verdict of an earlier process asked for a commit that may
		// come to this one.
		e.ExpectCommit()
	}
	p.cur = inst
	close(p.ready)
	// Add under mu, before Close can see closed and Wait.
	p.wg.Add(2)
	p.mu.Unlock()
	go p.watchExit(inst)
	go p.watchPolicy(ctx, inst)
}

// commitExpecter is a channel that is told when a verdict asked for a
// commit (rpc.Client): one that the plugin does not implement then fails.
type commitExpecter interface{ ExpectCommit() }

// fail takes inst out of service, kills it and schedules a restart. Only
// the first caller for a given instance does anything. An instance that
// dies young counts towards a crash loop, so that a plugin which starts
// fine but dies on every request is restarted with backoff, not spun on.
func (p *Plugin) fail(inst *instance, cause error) { p.retire(inst, cause, false) }

// retire is fail; for an instance that may be dying on its own (its watch
// ended, or a call's connection broke: a process's exit closes them
// before the host sees it end), the kill waits up to exitGrace for the
// process to be seen exiting, so that reportExit tells how it ended (the
// OOM killer's SIGKILL, a crash) rather than the host's own kill.
func (p *Plugin) retire(inst *instance, cause error, dying bool) {
	p.mu.Lock()
	if p.closed || p.cur != inst {
		p.mu.Unlock()
		return
	}
	p.cur = nil
	p.ready = make(chan struct{})
	if time.Since(inst.started) > healthyAfter {
		p.failures = 0
	}
	n := p.noteFailureLocked(cause)
	p.wg.Add(2)
	p.mu.Unlock()
	// inst's watch ends with it: until a new instance runs, which may be
	// never (a crash loop), no change of the policy can reach the cache.
	// What inst answered goes now, as when a watch is lost (watchPolicy).
	p.notify(verify.PolicyChange{Reason: "plugin failed"})
	p.log.Warn("verifier plugin failed; restarting", "pid", inst.pid, "error", cause)
	p.reportCrashLoop(n, cause)
	if !dying {
		inst.kill()
	}
	go p.restart()
	go p.reportExit(inst, dying)
}

// exitGrace is how long an instance that may be dying is given to be seen
// exiting on its own before the host kills it (retire).
const exitGrace = 250 * time.Millisecond

// reportExit says how a failed instance's process ended, if it ended on
// its own (a crash mid-call shows first as a broken call): its exit
// status, or the signal (SIGKILL from the OOM killer, SIGSEGV...).
// go-plugin's own account of it is debug level (stderr.go).
func (p *Plugin) reportExit(inst *instance, dying bool) {
	defer p.wg.Done()
	ctx, cancel := p.untilClosed()
	defer cancel()
	if dying {
		// The kill also releases what the instance holds (go-plugin's
		// client, the channel); a process already seen exiting keeps its
		// own status.
		exitsWithin(ctx, inst.life, exitGrace)
		inst.kill()
	}
	if !exitsWithin(ctx, inst.life, stderrWait) {
		return
	}
	if st := inst.life.exitStatus(); st != nil {
		p.log.Warn("verifier plugin process ended", "pid", inst.pid, "status", st)
	}
}

// noteFailureLocked counts one failure in a row; p.mu must be held.
func (p *Plugin) noteFailureLocked(cause error) int {
	p.failures++
	p.lastErr = cause
	return p.failures
}

// reportCrashLoop logs, once per crash loop, that the plugin keeps failing.
func (p *Plugin) reportCrashLoop(n int, cause error) {
	if n == crashLoopAfter {
		p.log.Error("verifier plugin is crash-looping; every peer is rejected meanwhile; still retrying with backoff",
			"failures", n, "max_backoff", p.cfg.MaxBackoff, "error", cause)
	}
}

// restart relaunches the plugin with exponential backoff until it runs or
// the Plugin is closed.
func (p *Plugin) restart() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		n := p.failures
		p.mu.Unlock()
		if d := backoff(n, p.cfg.MaxBackoff); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-p.closeCh:
				t.Stop()
				return
			}
		}
		ctx, cancel := p.untilClosed()
		inst, _, nc, err := p.launch(ctx)
		cancel()
		if err == nil {
			p.mu.Lock()
			p.needsChain = nc
			p.restarts++
			p.mu.Unlock()
			p.install(inst)
			p.log.Info("verifier plugin restarted", "pid", inst.pid)
			p.notify(verify.PolicyChange{Reason: "plugin restarted"})
			return
		}
		p.mu.Lock()
		closed := p.closed
		n = p.noteFailureLocked(err)
		p.mu.Unlock()
		if closed {
			return
		}
		p.log.Warn("verifier plugin restart failed", "attempt", n, "error", err)
		p.reportCrashLoop(n, err)
	}
}

// untilClosed returns a context that ends when the Plugin is closed, or
// when cancel is called.
func (p *Plugin) untilClosed() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-p.closeCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// backoff is 0 for the first failure in a row, then doubles from 50ms up
// to max.
func backoff(failures int, max time.Duration) time.Duration {
	if failures <= 1 {
		return 0
	}
	d := 50 * time.Millisecond << min(failures-2, 16)
	return min(d, max)
}

// watchExit notices a plugin process that died between calls and restarts
// it at once, so the next connection does not pay for the restart.
func (p *Plugin) watchExit(inst *instance) {
	defer p.wg.Done()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.closeCh:
			return
		case <-t.C:
		}
		if inst.life.exited() {
			// How it ended, reportExit says.
			p.fail(inst, fmt.Errorf("host: verifier %q (pid %d) exited", p.spec.Name, inst.pid))
			return
		}
		p.mu.Lock()
		gone := p.cur != inst
		p.mu.Unlock()
		if gone {
			return
		}
	}
}

// watchPolicy relays the plugin's policy changes to the watchers.
//
// inst is in service before its watch is up (install does not wait for
// it): a plugin of an older SDK acknowledges a gRPC watch only with its
// first change, or never, and waiting for it would hold up every start.
// A change made before the plugin subscribed reached no one, so once the
// watch is up (WatchPolicy returns when the plugin has subscribed), the
// verdicts cached meanwhile are dropped as for a change; the verdicts
// being decided then are not stored (core/cache). The same holds after a
// restart.
//
// A watch that fails, or ends while inst is in service, would leave its
// verdicts cached with nothing to drop them when the policy changes: the
// host drops them at once and takes the plugin for failed, so that it is
// restarted with a new watch. Only a plugin that says it has no changes to
// report (verify.ErrNoPolicyWatch) is served without one.
func (p *Plugin) watchPolicy(ctx context.Context, inst *instance) {
	defer p.wg.Done()
	ch, err := inst.v.WatchPolicy(ctx)
	if errors.Is(err, verify.ErrNoPolicyWatch) {
		return
	}
	if err == nil {
		p.notify(verify.PolicyChange{Reason: "policy watch started"})
		for c := range ch {
			p.log.Debug("verifier policy changed", "epoch", c.Epoch, "reason", c.Reason)
			p.notify(c)
		}
		err = errors.New("it ended")
		if w, ok := inst.v.(watchEnder); ok {
			if why := w.WatchEnded(); why != nil {
				err = fmt.Errorf("it ended: %w", why)
			}
		}
	}
	if ctx.Err() != nil {
		return // inst was taken out of service
	}
	// No change can reach the cache any more: inst goes out of service
	// now, and retire drops what the cache holds. The questions that drop
	// starts (the open connections asked again) then wait for the
	// instance that replaces inst. A plugin whose process died ends its
	// watch in the middle of its exit: asked then, inst failed them, and
	// connections its successor allows were closed. How a process ended,
	// reportExit says.
	p.retire(inst, fmt.Errorf("host: verifier %q (pid %d): policy watch: %w", p.spec.Name, inst.pid, err), true)
}

// watchEnder is a client that says why its policy watch ended: both the
// direct protocol's and gRPC's do.
type watchEnder interface{ WatchEnded() error }

var (
	_ watchEnder = (*direct.Client)(nil)
	_ watchEnder = (*rpc.Client)(nil)
)

// exitsWithin reports whether life's process is seen to exit within d,
// polling, as watchExit does; it gives up early when ctx ends.
func exitsWithin(ctx context.Context, life lifecycle, d time.Duration) bool {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	deadline := time.Now().Add(d)
	for !life.exited() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// notify tells the watchers of a policy change.
func (p *Plugin) notify(c verify.PolicyChange) {
	p.mu.Lock()
	watchers := append([]func(verify.PolicyChange){}, p.watchers...)
	p.mu.Unlock()
	for _, w := range watchers {
		w(c)
	}
}

// launch starts one plugin process and configures it.
func (p *Plugin) launch(ctx context.Context) (*instance, *verify.Description, bool, error) {
	// One start timeout for the whole start, not one per step.
	by := time.Now().Add(p.cfg.StartTimeout)
	inst, desc, err := spawn(ctx, by, p.spec, p.cfg, p.log)
	if err != nil {
		return nil, nil, false, err
	}
	// The host checks the options against what the plugin declares, so
	// that a plugin which forgets to is still told no.
	if err := verify.CheckOptions(desc, p.spec.Options); err != nil {
		inst.stop()
		return nil, nil, false, fmt.Errorf("host: verifier %q: %w", p.spec.Name, err)
	}
	sctx, cancel := context.WithDeadline(ctx, by)
	defer cancel()
	cr, err := inst.configure(sctx, p.spec.Options)
	if err != nil {
		if IsVerifierError(err) {
			// The plugin works and said no: let it exit quietly.
			inst.stop()
			return nil, nil, false, fmt.Errorf("host: verifier %q: %w", p.spec.Name, err)
		}
		err = startCallError(ctx, sctx, p.spec.Name, "Configure", inst, p.cfg.StartTimeout, err)
		inst.kill()
		return nil, nil, false, err
	}
	return inst, desc, cr.NeedsChain, nil
}

// startCallError explains a call of the start (Describe, Configure) under
// sctx, bounded by the start timeout, that failed other than by the
// verifier's own answer: the plugin did not answer within the timeout, or
// it broke the call, and then how its process ended, if it ended within a
// moment (what a user needs to find the fault: a crash in their Configure
// shows only as a broken connection otherwise).
func startCallError(ctx, sctx context.Context, name, call string, inst *instance, timeout time.Duration, err error) error {
	switch {
	case deadline.Passed(sctx) && !deadline.Passed(ctx):
		return fmt.Errorf("%w: verifier %q (pid %d) did not answer %s within the start timeout (%s): %w", ErrTimeout, name, inst.pid, call, timeout, err)
	case errors.Is(err, rpc.ErrTransport) || errors.Is(err, direct.ErrTransport):
		if exitsWithin(ctx, inst.life, stderrWait) {
			if st := inst.life.exitStatus(); st != nil {
				return fmt.Errorf("host: verifier %q (pid %d) exited during %s (%v): %w", name, inst.pid, call, st, err)
			}
			return fmt.Errorf("host: verifier %q (pid %d) exited during %s: %w", name, inst.pid, call, err)
		}
	}
	return fmt.Errorf("host: verifier %q: %s: %w", name, strings.ToLower(call), err)
}

// Describe starts the plugin of spec, asks it what it is and stops it,
// without configuring it.
func Describe(ctx context.Context, spec Spec, cfg Config) (*verify.Description, error) {
	cfg.defaults()
	spec.Known = nil // the plugin is asked
	inst, desc, err := spawn(ctx, time.Now().Add(cfg.StartTimeout), spec, cfg, cfg.Logger.ResetNamed(spec.Name))
	if err != nil {
		return nil, err
	}
	inst.stop()
	return desc, nil
}

// spawn starts one plugin process and asks it to describe itself, by the
// time by, when the start timeout ends.
func spawn(ctx context.Context, by time.Time, spec Spec, cfg Config, log hclog.Logger) (*instance, *verify.Description, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, abandoned(ctx, spec.Name)
	}
	// An absolute path: exec never searches $PATH for a bare name.
	path, err := filepath.Abs(spec.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("host: verifier %q: path %q: %w", spec.Name, spec.Path, err)
	}
	spec.Path = path
	exe, err := OpenPinned(spec.Name, path, spec.SHA256)
	if err != nil {
		return nil, nil, err
	}
	if exe != nil {
		// The child has its own copy once started (or never will).
		defer exe.Close()
	}
	if spec.Direct {
		return spawnDirect(ctx, by, spec, cfg, log, exe)
	}
	r := newProcRunner(path, spec.Args, cfg.Env, exe)
	stderr := &pluginStderr{log: log}
	r.stderrEnd = stderr.end
	dialOpts := rpc.DialOptions()
	autoMTLS := cfg.AutoMTLS || !rpc.PeerCredsSupported
	if !autoMTLS {
		// The kernel vouches for the plugin (rpc.HostCredentials) instead
		// of AutoMTLS; r.pid is set before go-plugin dials.
		dialOpts = append(dialOpts, grpc.WithTransportCredentials(rpc.HostCredentials(func() int { return r.pid })))
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  rpc.Handshake,
		VersionedPlugins: rpc.Plugins(nil),
		RunnerFunc:       r.prepare,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           newGoPluginLogger(log, path),
		AutoMTLS:         autoMTLS,
		SkipHostEnv:      true,
		// At least a nanosecond: go-plugin takes 0 for its default, a minute.
		StartTimeout: max(time.Until(by), time.Nanosecond),
		Stderr:       stderr,
		// A Go plugin's writes to os.Stderr after it started reach the host
		// through go-plugin's stdio stream, not the stderr pipe; without
		// this they are dropped.
		SyncStderr:      &pluginStderr{log: log},
		GRPCDialOptions: dialOpts,
	})
	inst := &instance{life: goPlugin{client: client, proc: r}, started: time.Now()}
	fail := func(err error) (*instance, *verify.Description, error) {
		inst.kill()
		r.removeSockDir()
		return nil, nil, err
	}
	// go-plugin waits for the plugin's handshake line until the start
	// timeout, whatever ctx says: the end of ctx kills the process (or
	// keeps it from starting), which ends the wait. Once the line is read,
	// go-plugin connects with no bound but gRPC's own (20 s for a socket
	// that accepts and never speaks HTTP/2): the start timeout, reached
	// after the line, kills the process too (cutConnect), which ends it.
	stopAbandon := context.AfterFunc(ctx, r.abandon)
	r.connectBy = by
	cutAt := time.AfterFunc(max(time.Until(by), 0), r.cutConnect)
	cp, err := client.Client()
	cutAt.Stop()
	stopAbandon()
	inst.pid = r.pid
	if ctx.Err() != nil && (err != nil || r.connectCut.Load()) {
		return fail(abandoned(ctx, spec.Name))
	}
	if r.connectCut.Load() {
		network, addr := r.handshakeAddr()
		return fail(fmt.Errorf("%w: verifier %q (pid %d) printed its handshake line, then did not answer connecting to %q %q within the start timeout (%s): does it serve gRPC there?",
			ErrTimeout, spec.Name, r.pid, network, addr, cfg.StartTimeout))
	}
	if err != nil {
		err = startError(spec, cfg.StartTimeout, err)
		if errors.Is(err, ErrHandshake) {
			// go-plugin reports a plugin that exited as soon as stdout
			// ends, possibly before it has copied the last stderr lines:
			// end the process group, then wait for the copy to finish.
			r.kill()
			r.waitPipes(stderrWait)
			if said := stderr.String(); said != "" {
				err = fmt.Errorf("%w; its last words on stderr: %q", err, said)
			}
		}
		return fail(err)
	}
	raw, err := cp.Dispense(rpc.PluginName)
	if err != nil {
		return fail(fmt.Errorf("host: verifier %q: %w", spec.Name, err))
	}
	v, ok := raw.(*rpc.Client)
	if !ok {
		return fail(fmt.Errorf("host: verifier %q: unexpected plugin type %T", spec.Name, raw))
	}
	inst.v = v
	sctx, cancel := context.WithDeadline(ctx, by)
	defer cancel()
	desc, err := v.Describe(sctx)
	if err != nil {
		if !IsVerifierError(err) {
			err = startCallError(ctx, sctx, spec.Name, "Describe", inst, cfg.StartTimeout, err)
		} else {
			err = fmt.Errorf("host: verifier %q: describe: %w", spec.Name, err)
		}
		return fail(err)
	}
	return inst, desc, nil
}

// abandoned is the error of a launch given up because ctx ended (the
// caller's context, or the Plugin's Close during a restart).
func abandoned(ctx context.Context, name string) error {
	return fmt.Errorf("host: verifier %q: start abandoned: %w", name, ctx.Err())
}

// startError explains a failed launch, bounded by timeout, in terms a
// user can act on.
func startError(spec Spec, timeout time.Duration, err error) error {
	if e := explainStart(spec, timeout, err); e != nil {
		return e
	}
	switch {
	case errors.Is(err, syscall.EACCES) || errors.Is(err, exec.ErrNotFound):
		return fmt.Errorf("host: verifier %q: cannot run %q: %w", spec.Name, spec.Path, err)
	}
	return fmt.Errorf("host: verifier %q: plugin %q did not start: %w", spec.Name, spec.Path, err)
}

// kill ends the process group at once and releases the channel. It is
// for plugins that failed: they get no chance to misbehave further.
func (i *instance) kill() {
	if i.cancel != nil {
		i.cancel()
	}
	i.life.kill()
}

// stop asks the plugin to exit (so that it can flush its logs), and kills
// its process group if it has not exited within gracePeriod. A plugin
// still in a call that its caller gave up on (a probe of it runs) may be
// stuck where it cannot even read the request to exit (a busy loop in a
// single-threaded runtime): it is killed at once, rather than after the
// grace with a warning that blames its Controller service.
func (i *instance) stop() {
	if i.probing.Load() {
		i.kill()
		return
	}
	if i.cancel != nil {
		i.cancel()
	}
	i.life.stop()
}

// goPlugin is the lifecycle of a plugin that go-plugin started.
type goPlugin struct {
	client *plugin.Client
	proc   *procRunner
}

func (g goPlugin) exited() bool { return g.client.Exited() }

func (g goPlugin) exitStatus() error { return g.proc.exitStatus() }

func (g goPlugin) kill() {
	g.proc.kill()
	g.client.Kill()
}

func (g goPlugin) stop() {
	done := make(chan struct{})
	go func() {
		g.client.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(gracePeriod):
		if exitedUnreaped(g.proc.pid) {
			// It did exit: another process holds its stdout or stderr
			// (releasePipes says so).
			break
		}
		// go-plugin's own account of this is debug level (stderr.go).
		g.proc.log.Warn("verifier plugin did not exit within the grace period after its Shutdown; killed (does it serve go-plugin's plugin.GRPCController, and exit on Shutdown even while a call of its verifier hangs?)",
			"pid", g.proc.pid, "grace", gracePeriod)
	}
	g.proc.kill()
	<-done
}

// gracePeriod is how long Close lets a plugin exit on its own.
const gracePeriod = 500 * time.Millisecond

// stderrWait bounds the wait for a failed plugin's stderr to be copied; a
// process outside the plugin's group could hold the pipe open forever.
const stderrWait = 2 * time.Second
