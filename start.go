package tlspin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/tlspin/tlspin/core/pintls"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/policy"
	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/internal/launch"
	"github.com/tlspin/tlspin/internal/recheck"
)

// Verifiers is a set of running verifier plugins combined into one
// decision. Its configurations and connections ask the verifiers about
// every peer. It is safe for concurrent use; Close stops the plugins.
//
// Only Start and StartWith make one. A Verifiers they did not make (the
// zero value, a struct field never set, a nil pointer) has no verifiers
// and fails closed: each method that returns an error returns one
// matching ErrBadArgument, Names and Stats return nothing, Watch
// revokes at once, and the configurations it returns reject every peer
// with that error.
type Verifiers struct {
	set     *launch.Set
	require Require
	timeout time.Duration
	log     hclog.Logger

	// ctx ends at Close: verifications in flight then fail closed.
	ctx    context.Context
	cancel context.CancelFunc

	// pending holds, per server connection, what its verification asked
	// to commit once the handshake succeeds (see Confirm).
	pending         pintls.PendingSet
	warnUnconfirmed sync.Once

	maxHandshakes int              // per Listen listener
	hsTimeout     time.Duration    // of each handshake of Dial and Listen
	clientCert    *tls.Certificate // what Dial presents, or nil

	// watched are the live connections asked about again at each policy
	// change (Watch); noRecheck: not those of Dial and Listen.
	watched   *recheck.Set
	noRecheck bool

	closeOnce sync.Once
}

// Start starts one verifier per spec, each as its own process, and returns
// once all are ready. A spec is what tlspin's --verifier takes: NAME,
// NAME:key=value,key=value (a key may repeat; in a value, \, is a comma and
// \\ a backslash), or a path to a plugin executable, with the same
// options. Several verifiers must all allow a peer; see StartWith for that
// and every other option.
//
// The verifiers start in parallel. The first that fails to start stops
// the others' starts, and Start returns its error with nothing left
// running: a slow plugin does not hold back another's bad option.
//
// ctx bounds the start only (an error then matches ctx's); the verifiers
// run until Close.
func Start(ctx context.Context, specs ...string) (*Verifiers, error) {
	return StartWith(ctx, specs)
}

// StartWith is Start with options; WithVerifier adds verifiers to specs.
func StartWith(ctx context.Context, specs []string, opts ...Option) (*Verifiers, error) {
	o := &options{launch: launch.Config{Getenv: os.Getenv}}
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	var all []launch.Spec
	for _, s := range specs {
		sp, err := launch.ParseSpec(s)
		if err != nil {
			return nil, err
		}
		all = append(all, sp)
	}
	all = append(all, o.specs...)
	lc := o.launch
	if !o.logSet {
		lc.Logger = defaultLogger(lc.Getenv)
	}
	if lvl := lc.Logger.GetLevel(); lvl != hclog.NoLevel && lc.LogLevel == "" {
		lc.LogLevel = lvl.String()
	}
	lc.ResolveSelf()
	set, err := launch.StartSet(ctx, &lc, all, policy.Mode(o.require), o.noCache)
	if err != nil {
		return nil, err
	}
	vctx, cancel := context.WithCancel(context.Background())
	timeout := lc.VerifyTimeout
	if timeout <= 0 {
		timeout = defaultVerifyTimeout
	}
	v := &Verifiers{set: set, require: o.require, timeout: timeout, log: lc.Logger, ctx: vctx, cancel: cancel, maxHandshakes: o.maxHandshakes, hsTimeout: o.hsTimeout, noRecheck: o.noRecheck, clientCert: o.clientCert}
	if v.maxHandshakes == 0 {
		v.maxHandshakes = DefaultMaxHandshakes
	}
	if v.hsTimeout == 0 {
		v.hsTimeout = DefaultHandshakeTimeout
	}
	v.pending.Expired = v.unconfirmed
	v.watched = recheck.New(vctx, recheck.DefaultEvery)
	v.watchChanges()
	return v, nil
}

// unconfirmed warns, once, that clients were allowed on condition of a
// record (tofu's first use) and their handshakes never confirmed: so
// nothing was recorded, and tofu enforces nothing for such a server.
func (v *Verifiers) unconfirmed(n int) {
	v.warnUnconfirmed.Do(func() {
		v.log.Warn("clients allowed on first use were never recorded, because their handshakes were not confirmed: call Confirm after each handshake of tls.Server, or serve on Listen (with net/http: http.Serve(v.Listen(...), handler))", "unconfirmed", n)
	})
}

// defaultVerifyTimeout is the host's own default for one Verify call.
const defaultVerifyTimeout = 5 * time.Second

// defaultLogger logs to stderr at $TLSPIN_LOG_LEVEL, warn when unset.
func defaultLogger(getenv func(string) string) hclog.Logger {
	lvl := hclog.LevelFromString(getenv("TLSPIN_LOG_LEVEL"))
	if lvl == hclog.NoLevel {
		lvl = hclog.Warn
	}
	return hclog.New(&hclog.LoggerOptions{Name: "tlspin", Level: lvl, Output: os.Stderr})
}

// errUnstarted is the error of a Verifiers that Start did not make.
var errUnstarted = badArgument{errors.New("tlspin: this Verifiers was not made by Start or StartWith (it is a zero Verifiers, or nil), so it has no verifiers and rejects every peer: use the *Verifiers that Start or StartWith returns")}

// unstarted returns an error matching ErrBadArgument unless Start or
// StartWith made v. Every exported method asks it before it uses v.
func (v *Verifiers) unstarted() error {
	if v == nil || v.set == nil {
		return errUnstarted
	}
	return nil
}

// context is what v's verifications run under: until Close, or, for a
// Verifiers that Start did not make, context.Background (whose
// verifications fail at once, with errUnstarted).
func (v *Verifiers) context() context.Context {
	if v.unstarted() != nil {
		return context.Background()
	}
	return v.ctx
}

// Names returns the verifiers' names, in the order started (none for a
// Verifiers that Start did not make).
func (v *Verifiers) Names() []string {
	if v.unstarted() != nil {
		return nil
	}
	return append([]string(nil), v.set.Names...)
}

// Close stops every verifier process, all at once: a plugin that does not
// exit when asked is killed after a grace period of 0.5 s, so Close takes
// at most about that, however many verifiers there are. Afterwards every
// configuration made by v rejects every peer (ErrClosed), and every
// listener Listen made is closed. Close is safe to call more than once; it
// always returns nil, but for a Verifiers that Start did not make: an
// error matching ErrBadArgument.
func (v *Verifiers) Close() error {
	if err := v.unstarted(); err != nil {
		return err
	}
	v.closeOnce.Do(func() {
		v.cancel()
		v.set.Close()
	})
	return nil
}

func (v *Verifiers) closed() bool { return v.ctx.Err() != nil }

// ServeBuiltin makes built-in verifiers (md5pin, sha256pin, spkipin,
// allowlist, tofu, ca) run from this program. Call it first thing in main:
//
//	func main() {
//		tlspin.ServeBuiltin()
//		...
//	}
//
// Start runs a built-in verifier as a child process by re-executing this
// program with the arguments `__verifier NAME` and go-plugin's handshake
// variable; ServeBuiltin recognises that, serves the verifier and exits.
// Otherwise it returns at once, and records that Start may re-execute this
// program. Without the call, Start runs built-ins with a tlspin binary
// found on $PATH, unless another user may have written it (checked as a
// verifier plugin is). Which one ran is logged at debug level.
func ServeBuiltin() {
	args := os.Args
	if len(args) == 3 && args[1] == launch.ServeCommand && os.Getenv(rpc.Handshake.MagicCookieKey) == rpc.Handshake.MagicCookieValue {
		if err := launch.ServeBuiltin(args[2]); err != nil {
			fmt.Fprintf(os.Stderr, "tlspin: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	launch.MarkServesBuiltins()
}

// Stats are running figures of the verifiers, for metrics.
type Stats struct {
	// PluginRestarts counts the plugin processes restarted after a crash
	// or a hang, over all verifiers.
	PluginRestarts int
	// CacheHits and CacheMisses count verdicts answered from the verdict
	// cache and verdicts asked of a plugin (both zero WithoutCache).
	CacheHits, CacheMisses uint64
	// Unconfirmed counts the server connections whose verification asked
	// to record the client or log it as accepted, waiting for Confirm.
	Unconfirmed int
}

// Stats returns the verifiers' running figures (all zero for a Verifiers
// that Start did not make).
func (v *Verifiers) Stats() Stats {
	if v.unstarted() != nil {
		return Stats{}
	}
	s := Stats{Unconfirmed: v.pending.Len()}
	for _, p := range v.set.Plugins {
		s.PluginRestarts += p.Restarts()
	}
	if v.set.Cache != nil {
		cs := v.set.Cache.Stats()
		s.CacheHits, s.CacheMisses = cs.Hits, cs.Misses
	}
	return s
}
