// Package launch is the one way tlspin starts verifiers, for the library
// (package tlspin) and the CLI alike: it parses verifier specs, finds each
// verifier, applies checksum pins and the plugin environment, and starts
// every verifier as its own plugin process.
package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/cache"
	"github.com/tlspin/tlspin/core/direct"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/plugproc"
	"github.com/tlspin/tlspin/core/policy"
	"github.com/tlspin/tlspin/core/sdk"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/files"
	"github.com/tlspin/tlspin/verifiers/builtin"
)

// ErrConfig is matched (errors.Is) by every error caused by what the caller
// asked for: a malformed spec, an unknown verifier, an option a verifier
// refuses, a bad or unused checksum pin, a reserved environment variable.
var ErrConfig = errors.New("tlspin: bad verifier configuration")

// ErrUnusedPin is matched by the configuration error of a Pinned name that
// no verifier started uses.
var ErrUnusedPin = errors.New("tlspin: checksum pinned for a verifier not started")

// configError marks err as the caller's mistake without changing its text.
type configError struct{ err error }

func (e configError) Error() string        { return e.err.Error() }
func (e configError) Unwrap() error        { return e.err }
func (e configError) Is(target error) bool { return target == ErrConfig }

// Configf is a configuration error formatted like fmt.Errorf.
func Configf(format string, a ...any) error { return configError{fmt.Errorf(format, a...)} }

// AsConfig marks err as a configuration error (nil stays nil).
func AsConfig(err error) error {
	if err == nil {
		return nil
	}
	return configError{err}
}

// served is set once the program has shown it can serve built-in
// verifiers itself (tlspin.ServeBuiltin returned: not started as one).
var served atomic.Bool

// MarkServesBuiltins records that this program serves built-in verifiers
// when re-executed with BuiltinArgs.
func MarkServesBuiltins() { served.Store(true) }

// ResolveSelf chooses what runs built-in verifiers: Self when it is set (a
// tlspin binary given), if the plugin trust check (files.CheckExecutable)
// accepts it; else this program, re-executed, if it serves them
// (MarkServesBuiltins); else the first tlspin binary on the plugin
// environment's $PATH, if the trust check accepts it. Without any, built-in
// verifiers cannot run and NoSelf says why and what to do. A tlspin-builtins
// of the same build next to Self runs them faster (Builtins).
func (c *Config) ResolveSelf() {
	defer c.resolveBuiltins()
	switch {
	case c.Self != "" && c.SelfExec == "":
		// It runs the built-ins, which decide whom to trust: checked as
		// any plugin is, by its metadata alone, and never replaced by
		// another tlspin when refused.
		if err := files.CheckExecutable(c.Self, c.getenv("PATH")); err != nil {
			c.NoSelf = fmt.Sprintf("the tlspin binary given, %s, is refused: %v", c.Self, err)
			c.Self = ""
			return
		}
		fallthrough
	case c.Self != "":
		if c.SelfVia == "" {
			c.SelfVia = "given tlspin binary"
		}
		return
	case served.Load():
		if exe, err := os.Executable(); err == nil {
			c.Self, c.SelfExec, c.SelfVia = exe, procSelfExe(), "this program, re-executed (it calls tlspin.ServeBuiltin)"
			return
		}
	}
	for _, d := range filepath.SplitList(c.getenv("PATH")) {
		p := filepath.Join(d, "tlspin")
		if !filepath.IsAbs(p) {
			continue // a relative $PATH entry would depend on the working directory
		}
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			// It runs the built-ins, which decide whom to trust: checked
			// as any plugin is, before anything reads or runs it. One
			// refused is not passed over for another further on, which
			// the user's shell would not run.
			if err := files.CheckExecutable(p, c.getenv("PATH")); err != nil {
				c.NoSelf = fmt.Sprintf("this program does not call tlspin.ServeBuiltin() first thing in main, and the tlspin binary on $PATH, %s, is refused: %v", p, err)
				return
			}
			c.Self, c.SelfVia = p, "the tlspin binary on $PATH"
			return
		}
	}
	c.NoSelf = "this program does not call tlspin.ServeBuiltin() first thing in main, and no tlspin binary is on $PATH"
}

// procSelfExe is /proc/self/exe where it exists: the very binary this
// process runs, even if the file it came from was replaced since, so that a
// built-in plugin is always the same code as its host.
func procSelfExe() string {
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		return "/proc/self/exe"
	}
	return ""
}

// Spec is one verifier to start: a name (or a path) and its options.
type Spec struct {
	Name    string
	Options verify.Options
}

// ParseSpec parses NAME, NAME:key=value,key=value or PATH[:key=value...].
// A key may repeat (backup pins); empty items between commas are skipped.
// After the colon, \, is a comma that does not end the option and \\ is a
// backslash; a backslash before anything else is refused, so that no value
// written for another syntax is silently changed. NAME takes no escapes.
func ParseSpec(s string) (Spec, error) {
	name, rest, hasOpts := strings.Cut(s, ":")
	if name == "" {
		return Spec{}, Configf("verifier %q: missing name", s)
	}
	sp := Spec{Name: name, Options: verify.Options{}}
	if !hasOpts {
		return sp, nil
	}
	items, err := splitOptions(rest)
	if err != nil {
		return Spec{}, Configf("verifier %#q: %w", s, err)
	}
	for i, it := range items {
		k, v, ok := strings.Cut(it.text, "=")
		if !ok || k == "" {
			hint := ""
			if i > 0 {
				hint = ` (a comma inside a value is written \,; in a shell, inside single quotes: 'NAME:key=a\, b')`
			}
			return Spec{}, Configf("verifier %q: option %q is not key=value%s", s, it.raw, hint)
		}
		sp.Options[k] = append(sp.Options[k], v)
	}
	return sp, nil
}

// option is one item of a spec's options: as written, and unescaped.
type option struct{ raw, text string }

// splitOptions splits the options of a spec at each comma not escaped,
// unescaping \, and \\, and skipping empty items.
func splitOptions(rest string) ([]option, error) {
	var out []option
	var text strings.Builder
	start := 0
	end := func(i int) {
		if i > start {
			out = append(out, option{raw: rest[start:i], text: text.String()})
		}
		text.Reset()
		start = i + 1
	}
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; c {
		case ',':
			end(i)
		case '\\':
			// The item as written runs to the next comma not escaped.
			raw := rest[start:]
			for k := i + 2; k < len(rest); k++ {
				if rest[k] == ',' && !escaped(rest, k) {
					raw = rest[start:k]
					break
				}
			}
			if i+1 == len(rest) {
				return nil, fmt.Errorf("option %#q: a backslash at the end; write \\, for a comma and \\\\ for a backslash", raw)
			}
			if n := rest[i+1]; n != ',' && n != '\\' {
				r, _ := utf8.DecodeRuneInString(rest[i+1:])
				return nil, fmt.Errorf("option %#q: a backslash before %q; write \\, for a comma and \\\\ for a backslash", raw, string(r))
			}
			text.WriteByte(rest[i+1])
			i++
		default:
			text.WriteByte(c)
		}
	}
	end(len(rest))
	return out, nil
}

// escaped reports whether s[i] follows an odd run of backslashes.
func escaped(s string, i int) bool {
	n := 0
	for i > 0 && s[i-1] == '\\' {
		n++
		i--
	}
	return n%2 == 1
}

// ServeCommand is the argument that makes a program serve a built-in
// verifier: Self is re-executed as `Self ServeCommand NAME`.
const ServeCommand = "__verifier"

// BuiltinArgs returns the arguments that run built-in verifier name.
func BuiltinArgs(name string) []string { return []string{ServeCommand, name} }

// BuiltinNames lists the built-in verifiers.
func BuiltinNames() []string { return builtin.New(nil).Names() }

// Config says how to find and run verifiers. Zero values get defaults.
type Config struct {
	// Self is the executable that serves built-in verifiers when run with
	// BuiltinArgs (tlspin, or a program calling tlspin.ServeBuiltin);
	// SelfExec, if set, is what is actually executed (/proc/self/exe).
	// With Self empty, built-in verifiers cannot run and NoSelf says why.
	Self, SelfExec string
	// SelfVia says, for the debug log, how Self was chosen.
	SelfVia string
	NoSelf  string
	// Builtins is the tlspin-builtins binary that runs built-in verifiers
	// instead of Self, if ResolveSelf found one of the same build next to
	// Self; BuiltinsWhyNot says why it did not.
	Builtins, BuiltinsWhyNot string
	// PluginDirs are searched first for tlspin-verifier-NAME.
	PluginDirs []string
	// Getenv reads the host environment (os.Getenv when nil).
	Getenv func(string) string
	// Checksums pins executables by verifier name; it may name verifiers
	// not started (a shared checksum file).
	Checksums host.Checksums
	// Pinned pins executables too, but each name must be a verifier that
	// is started: a pin for an unused name is a typo that would otherwise
	// let the intended plugin run unpinned.
	Pinned host.Checksums
	// PassEnv names host variables passed through to plugins on top of
	// host.PluginEnvVars (for debugging: PYTHONPATH, NODE_OPTIONS).
	PassEnv []string
	// LogLevel is given to plugins as TLSPIN_LOG_LEVEL (default the host's
	// own TLSPIN_LOG_LEVEL).
	LogLevel string
	// Logger receives plugin logs and go-plugin's narration.
	Logger        hclog.Logger
	VerifyTimeout time.Duration
	StartTimeout  time.Duration
}

func (c *Config) getenv(k string) string {
	if c.Getenv == nil {
		return ""
	}
	return c.Getenv(k)
}

func (c *Config) logger() hclog.Logger {
	if c.Logger == nil {
		return hclog.NewNullLogger()
	}
	return c.Logger
}

// Finder returns the verifier finder this configuration implies.
func (c *Config) Finder() *host.Finder {
	return &host.Finder{
		Builtins:     BuiltinNames(),
		Self:         c.Self,
		SelfExec:     c.SelfExec,
		BuiltinsExec: c.Builtins,
		SelfArgs:     BuiltinArgs,
		PluginDirs:   c.PluginDirs,
		EnvPath:      c.getenv("TLSPIN_PLUGIN_PATH"),
		SysPath:      c.getenv("PATH"),
	}
}

// reservedEnv says who sets k for the plugin, if the host does: go-plugin's
// variables and its magic cookie, the direct protocol's channel
// descriptor, and host.PluginEnvVars (TLSPIN_LOG_LEVEL from LogLevel).
// Passed on top, k would replace the host's value (exec keeps the last of
// a name), so that, say, a plugin of the direct protocol took another
// descriptor for its channel; "" otherwise.
func reservedEnv(k string) string {
	switch {
	case strings.HasPrefix(k, "PLUGIN_") || k == plugproc.CookieKey:
		return "go-plugin's handshake"
	case k == direct.EnvChannel:
		return "the direct protocol (the descriptor of the plugin's channel)"
	case slices.Contains(host.PluginEnvVars(), k):
		return "tlspin, for every plugin"
	}
	return ""
}

// PluginEnv is the whole environment a plugin receives: host.PluginEnvVars,
// GOMAXPROCS=1 (a verifier answers small calls one at a time, and one
// runtime thread makes each call cheaper; docs/performance.md), then each
// PassEnv variable the host has set. A PassEnv name the host sets itself
// (reservedEnv) is a configuration error naming it, GOMAXPROCS aside.
func (c *Config) PluginEnv() ([]string, error) {
	env := append(host.PluginEnv(func(k string) string {
		if k == "TLSPIN_LOG_LEVEL" && c.LogLevel != "" {
			return c.LogLevel
		}
		return c.getenv(k)
	}), "GOMAXPROCS=1")
	for _, k := range c.PassEnv {
		switch {
		case k == "" || strings.ContainsAny(k, "= \x00"):
			return nil, Configf("plugin environment: %q is not a variable name", k)
		case reservedEnv(k) != "":
			return nil, Configf("plugin environment: %q is set for the plugin by %s, and cannot be passed: it would replace that value", k, reservedEnv(k))
		}
		if v := c.getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env, nil
}

// HostConfig is how plugins run under this configuration.
func (c *Config) HostConfig() (host.Config, error) {
	env, err := c.PluginEnv()
	if err != nil {
		return host.Config{}, err
	}
	return host.Config{
		Logger:        c.logger(),
		VerifyTimeout: c.VerifyTimeout,
		StartTimeout:  c.StartTimeout,
		Env:           env,
	}, nil
}

// find locates every spec's verifier, so that a typo starts nothing.
func (c *Config) find(specs []Spec) ([]host.Found, error) {
	fd := c.Finder()
	found := make([]host.Found, len(specs))
	for i, s := range specs {
		f, err := fd.Find(s.Name)
		if errors.Is(err, host.ErrUnknownVerifier) {
			return nil, AsConfig(err)
		}
		if err != nil {
			return nil, err
		}
		for _, p := range f.Shadowed {
			c.logger().Warn("ignored a plugin named after a built-in verifier: built-ins cannot be shadowed (rename it to run it)", "verifier", s.Name, "ignored", p)
		}
		if f.Source == host.SourceBuiltin {
			if c.Self == "" {
				return nil, fmt.Errorf("launch: built-in verifier %q cannot run: %s", s.Name, c.NoSelf)
			}
			if f.Direct {
				c.logger().Debug("built-in verifier runs as a child process", "verifier", s.Name, "runner", "tlspin-builtins next to "+c.Self+", direct protocol", "path", f.Path)
			} else {
				c.logger().Debug("built-in verifier runs as a child process", "verifier", s.Name, "runner", c.SelfVia, "path", f.Path, "args", f.Args, "not_tlspin_builtins", c.BuiltinsWhyNot)
			}
		}
		found[i] = f
	}
	return found, nil
}

// CheckPinned finds every spec's verifier and refuses a Pinned name that
// none of them is, for callers that start them one at a time (StartOne).
func (c *Config) CheckPinned(specs []Spec) error {
	found, err := c.find(specs)
	if err != nil {
		return err
	}
	return c.checkPinned(found)
}

// FindOne finds the verifier called name, as Start would, for a caller
// that runs it some other way (describing it, checking its plugin), and
// returns the SHA-256 its executable is pinned to (Pinned, then
// Checksums), nil if none: whatever runs it must refuse a file with
// another sum, as Start does. A Pinned name other than the verifier's is
// refused, as by Start.
func (c *Config) FindOne(name string) (host.Found, []byte, error) {
	found, err := c.find([]Spec{{Name: name}})
	if err == nil {
		err = c.checkPinned(found)
	}
	if err != nil {
		return host.Found{}, nil, err
	}
	c.warnUnpinned(found)
	return found[0], c.sum(found[0].Name), nil
}

// checkPinned refuses a Pinned name that no verifier uses.
func (c *Config) checkPinned(found []host.Found) error {
	var unused []string
	for name := range c.Pinned {
		if !slices.ContainsFunc(found, func(f host.Found) bool { return f.Name == name }) {
			unused = append(unused, name)
		}
	}
	if len(unused) == 0 {
		return nil
	}
	sort.Strings(unused)
	names := make([]string, len(found))
	for i, f := range found {
		names[i] = f.Name
	}
	return Configf("%w: %q (verifiers: %s); a misspelt name would leave the intended plugin unpinned",
		ErrUnusedPin, strings.Join(unused, ", "), strings.Join(names, ", "))
}

// warnUnpinned warns of each external verifier that a checksums file,
// given to pin plugins, does not list: it runs unpinned, which the user
// who gave the file may not expect.
func (c *Config) warnUnpinned(found []host.Found) {
	if c.Checksums == nil {
		return
	}
	for _, f := range found {
		if f.Source != host.SourceBuiltin && c.sum(f.Name) == nil {
			c.logger().Warn("the checksums file does not list this verifier's plugin: it runs unpinned", "verifier", f.Name, "path", f.Path)
		}
	}
}

// sum returns the pinned SHA-256 for a verifier, if any.
func (c *Config) sum(name string) []byte {
	if s, ok := c.Pinned[name]; ok {
		return s
	}
	return c.Checksums[name]
}

// Start finds and starts every spec's verifier, each as its own process,
// in parallel. On error nothing is left running.
func Start(ctx context.Context, c *Config, specs []Spec) ([]*host.Plugin, []string, error) {
	return start(ctx, c, specs, true)
}

func start(ctx context.Context, c *Config, specs []Spec, checkPinned bool) ([]*host.Plugin, []string, error) {
	if len(specs) == 0 {
		return nil, nil, Configf("no verifier given")
	}
	found, err := c.find(specs)
	if err == nil && checkPinned {
		err = c.checkPinned(found)
	}
	if err != nil {
		return nil, nil, err
	}
	hc, err := c.HostConfig()
	if err != nil {
		return nil, nil, err
	}
	c.warnUnpinned(found)
	plugins := make([]*host.Plugin, len(specs))
	errs := make([]error, len(specs))
	// The first start that fails abandons the others: a slow sibling (a
	// Python plugin, one stuck before its handshake line) would otherwise
	// hold the error back for up to the start timeout. Only the failures
	// before that count; the abandoned starts' "context canceled" is not
	// news.
	sctx, abandon := context.WithCancel(ctx)
	defer abandon()
	var (
		mu        sync.Mutex
		abandoned bool
	)
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Go(func() {
			var err error
			defer func() {
				if err == nil {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if !abandoned || ctx.Err() != nil {
					errs[i] = err
				}
				abandoned = true
				abandon()
			}()
			spec := found[i].Spec(s.Options)
			spec.SHA256 = c.sum(found[i].Name)
			if spec.Direct {
				if spec.Known, err = knownBuiltin(sctx, spec.Name); err != nil {
					return
				}
			}
			plugins[i], err = host.Start(sctx, spec, hc)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(plugins)
		if errors.Is(err, verify.ErrBadOption) {
			err = AsConfig(err)
		}
		return nil, nil, err
	}
	names := make([]string, len(found))
	for i, f := range found {
		names[i] = f.Name
	}
	return plugins, names, nil
}

// StartOne starts a single verifier (bench, compare), without checking
// Pinned names: check them once with CheckPinned.
func StartOne(ctx context.Context, c *Config, s Spec) (*host.Plugin, error) {
	ps, _, err := start(ctx, c, []Spec{s}, false)
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// Set is started verifiers combined into a policy.
type Set struct {
	Policy  *policy.Policy
	Plugins []*host.Plugin
	Names   []string
	// Cache is the verdict cache in front of the plugins; nil without one.
	Cache *cache.Cache
}

// StartSet starts specs and combines them under mode, each behind the
// verdict cache unless noCache.
func StartSet(ctx context.Context, c *Config, specs []Spec, mode policy.Mode, noCache bool) (*Set, error) {
	plugins, names, err := Start(ctx, c, specs)
	if err != nil {
		return nil, err
	}
	s := &Set{Plugins: plugins, Names: names}
	var vc *cache.Cache // nil: every handshake asks the plugin
	if !noCache {
		vc = cache.New(cache.Config{})
	}
	s.Cache = vc
	members := make([]policy.Member, len(plugins))
	for i, p := range plugins {
		members[i] = policy.Member{Name: names[i], V: vc.Wrap(names[i], p)}
	}
	if s.Policy, err = policy.New(mode, members...); err != nil {
		s.Close()
		return nil, AsConfig(err)
	}
	return s, nil
}

// Close stops every plugin process.
func (s *Set) Close() { closeAll(s.Plugins) }

// closeAll stops the plugins (nil ones skipped) concurrently and returns
// once all are stopped: each may wait out a grace period for its process
// to exit, which one after another would add up.
func closeAll(plugins []*host.Plugin) {
	var wg sync.WaitGroup
	for _, p := range plugins {
		if p != nil {
			wg.Go(func() { p.Close() })
		}
	}
	wg.Wait()
}

// ServeBuiltin serves built-in verifier name as a plugin over this
// process's stdio until the host goes away. It returns an error only for
// a name that is not built in.
func ServeBuiltin(name string) error {
	v, err := builtin.New(sdk.Logger(name)).Lookup(name)
	if err != nil {
		return err
	}
	sdk.Serve(v)
	return nil
}
