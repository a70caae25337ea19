package cli

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"

	"github.com/tlspin/tlspin/core/cache"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/policy"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/verifiers/builtin"
)

// verifierFlags are the flags that choose and configure verifiers.
type verifierFlags struct {
	specs   []string
	pins    []string
	opts    []string
	require string
	noCache bool
}

func (f *verifierFlags) register(fs *pflag.FlagSet, what string) {
	fs.StringArrayVar(&f.specs, "verifier", nil, "verifier that decides on the "+what+": NAME or NAME:key=value,key=value (repeatable; NAME may be a path to a plugin executable)")
	fs.StringArrayVar(&f.pins, "pin", nil, "short for --opt pin=VALUE (repeatable: backup pins)")
	fs.StringArrayVar(&f.opts, "opt", nil, "KEY=VALUE option for the verifier (repeatable); with several --verifier, use NAME:key=value instead")
	fs.StringVar(&f.require, "require", "all", "with several verifiers: all must allow, or any one may")
	fs.BoolVar(&f.noCache, "no-cache", false, "ask the verifier on every handshake, even when its verdict says it may be reused")
}

// verifierSpec is one parsed --verifier.
type verifierSpec struct {
	name string
	opts verify.Options
}

// parse turns the flags into specs, merging --pin and --opt into the only
// verifier.
func (f *verifierFlags) parse() ([]verifierSpec, policy.Mode, error) {
	mode, err := policy.ParseMode(f.require)
	if err != nil {
		return nil, "", usageError{err}
	}
	var out []verifierSpec
	for _, s := range f.specs {
		vs, err := parseVerifierSpec(s)
		if err != nil {
			return nil, "", err
		}
		out = append(out, vs)
	}
	extra := len(f.pins) + len(f.opts)
	if extra > 0 {
		switch len(out) {
		case 0:
			return nil, "", usagef("--pin and --opt need a --verifier (for example --verifier md5pin --pin HEX)")
		case 1:
		default:
			return nil, "", usagef("--pin and --opt are ambiguous with %d verifiers: write --verifier NAME:key=value instead", len(out))
		}
		for _, p := range f.pins {
			out[0].opts["pin"] = append(out[0].opts["pin"], p)
		}
		for _, o := range f.opts {
			k, v, ok := strings.Cut(o, "=")
			if !ok || k == "" {
				return nil, "", usagef("--opt %q: want KEY=VALUE", o)
			}
			out[0].opts[k] = append(out[0].opts[k], v)
		}
	}
	return out, mode, nil
}

// parseVerifierSpec parses NAME or NAME:key=value,key=value.
func parseVerifierSpec(s string) (verifierSpec, error) {
	name, rest, hasOpts := strings.Cut(s, ":")
	if name == "" {
		return verifierSpec{}, usagef("--verifier %q: missing name", s)
	}
	vs := verifierSpec{name: name, opts: verify.Options{}}
	if !hasOpts {
		return vs, nil
	}
	for kv := range strings.SplitSeq(rest, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return verifierSpec{}, usagef("--verifier %q: option %q is not key=value", s, kv)
		}
		vs.opts[k] = append(vs.opts[k], v)
	}
	return vs, nil
}

// finder returns the verifier finder for this invocation.
func (a *app) finder() *host.Finder {
	return &host.Finder{
		Builtins:   builtin.New(nil).Names(),
		Self:       a.env.Self,
		SelfExec:   selfExec(),
		SelfArgs:   builtinArgs,
		PluginDirs: a.g.pluginDirs,
		EnvPath:    a.env.Getenv("TLSPIN_PLUGIN_PATH"),
		SysPath:    a.env.Getenv("PATH"),
	}
}

// pluginEnv is the whole environment a plugin receives: the host's own is
// not passed on (see host.PluginEnvVars). GOMAXPROCS=1: a verifier answers
// small calls one at a time, and a single runtime thread makes each call
// through the plugin cheaper (fewer wake-ups; docs/performance.md).
func (a *app) pluginEnv() []string {
	return append(host.PluginEnv(func(k string) string {
		if k == "TLSPIN_LOG_LEVEL" {
			return a.g.logLevel
		}
		return a.env.Getenv(k)
	}), "GOMAXPROCS=1")
}

// checksums gathers --plugin-checksums and --plugin-sha256.
func (a *app) checksums() (host.Checksums, error) {
	sums := host.Checksums{}
	if a.g.checksumFile != "" {
		c, err := host.LoadChecksums(a.g.checksumFile)
		if err != nil {
			return nil, err
		}
		sums = c
	}
	for _, f := range a.g.pluginSHA256 {
		name, sum, err := host.ParseChecksumFlag(f)
		if err != nil {
			return nil, usageError{err}
		}
		if err := sums.Add(name, sum); err != nil {
			return nil, usageError{err}
		}
	}
	return sums, nil
}

// pluginLogger is the logger plugins' logs are re-emitted through. go-plugin
// narrates process starts and exits at info; those show from debug on.
func (a *app) pluginLogger() hclog.Logger {
	lvl := hclog.LevelFromString(a.g.logLevel)
	if lvl < hclog.Warn && lvl > hclog.Debug {
		lvl = hclog.Warn
	}
	return hclog.New(&hclog.LoggerOptions{Name: "tlspin", Level: lvl, Output: a.env.Stderr})
}

// hostConfig is how this invocation runs plugins.
func (a *app) hostConfig() host.Config {
	return host.Config{
		Logger:        a.pluginLogger(),
		VerifyTimeout: a.g.verifyTimeout,
		StartTimeout:  a.g.startTimeout,
		Env:           a.pluginEnv(),
	}
}

// verifiers is a started set of verifier plugins combined into a policy.
type verifiers struct {
	policy  *policy.Policy
	plugins []*host.Plugin
}

// Close stops every plugin process.
func (v *verifiers) Close() {
	for _, p := range v.plugins {
		p.Close()
	}
}

// startVerifiers launches every verifier the flags name, each as its own
// process, and combines them. On error nothing is left running.
func (a *app) startVerifiers(ctx context.Context, f *verifierFlags) (*verifiers, error) {
	specs, mode, err := f.parse()
	if err != nil {
		return nil, err
	}
	if len(specs) == 0 {
		return nil, usagef("no verifier: give --verifier NAME (see `tlspin verifiers`)")
	}
	sums, err := a.checksums()
	if err != nil {
		return nil, err
	}
	// Find them all first, so that a typo starts nothing.
	fd := a.finder()
	found := make([]host.Found, len(specs))
	for i, s := range specs {
		if found[i], err = fd.Find(s.name); err != nil {
			if errors.Is(err, host.ErrUnknownVerifier) {
				return nil, usageError{err}
			}
			return nil, err
		}
	}
	// Launch them in parallel: each launch is mostly waiting on a process.
	plugins := make([]*host.Plugin, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Go(func() {
			spec := found[i].Spec(s.opts)
			spec.SHA256 = sums[found[i].Name]
			plugins[i], errs[i] = host.Start(ctx, spec, a.hostConfig())
		})
	}
	wg.Wait()
	vs := &verifiers{}
	for _, p := range plugins {
		if p != nil {
			vs.plugins = append(vs.plugins, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		vs.Close()
		if errors.Is(err, verify.ErrBadOption) {
			return nil, usageError{err}
		}
		return nil, err
	}
	var vc *cache.Cache // nil: every handshake asks the plugin
	if !f.noCache {
		vc = cache.New(cache.Config{})
	}
	members := make([]policy.Member, len(specs))
	for i, p := range plugins {
		members[i] = policy.Member{Name: found[i].Name, V: vc.Wrap(found[i].Name, p)}
	}
	vs.policy, err = policy.New(mode, members...)
	if err != nil {
		vs.Close()
		return nil, err
	}
	return vs, nil
}
