package cli

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/policy"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/launch"
	"github.com/tlspin/tlspin/internal/server"
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
	fs.StringArrayVar(&f.specs, "verifier", nil, "verifier that decides on the "+what+": NAME or NAME:key=value,key=value (repeatable; NAME may be a path to a plugin executable; in a value, write a comma as \\, and a backslash twice, and quote it for the shell: 'NAME:cn=Acme\\, Inc')")
	fs.StringArrayVar(&f.pins, "pin", nil, "short for --opt pin=VALUE (repeatable: backup pins)")
	fs.StringArrayVar(&f.opts, "opt", nil, "KEY=VALUE option for the verifier (repeatable); with several --verifier, use NAME:key=value instead")
	f.require = "all"
	fs.Var((*requireValue)(&f.require), "require", "with several verifiers: all must allow, or any one may")
	fs.BoolVar(&f.noCache, "no-cache", false, "ask the verifier on every handshake, even when its verdict says it may be reused")
}

// requireValue is --require, checked as it is parsed: a bad value is
// refused even by a command given no verifier (serve without --verifier).
type requireValue string

func (v *requireValue) String() string { return string(*v) }
func (v *requireValue) Type() string   { return "string" }
func (v *requireValue) Set(s string) error {
	if _, err := policy.ParseMode(s); err != nil {
		return err
	}
	*v = requireValue(s)
	return nil
}

// given reports whether any verifier flag was used.
func (f *verifierFlags) given() bool { return len(f.specs)+len(f.pins)+len(f.opts) > 0 }

// parse turns the flags into specs, merging --pin and --opt into the only
// verifier.
func (f *verifierFlags) parse() ([]launch.Spec, tlspin.Require, error) {
	mode, err := policy.ParseMode(f.require)
	if err != nil {
		return nil, "", usageError{err}
	}
	var out []launch.Spec
	for _, s := range f.specs {
		vs, err := launch.ParseSpec(s)
		if err != nil {
			return nil, "", usageError{err}
		}
		out = append(out, vs)
	}
	if len(f.pins)+len(f.opts) > 0 {
		switch len(out) {
		case 0:
			return nil, "", usagef("--pin and --opt need a --verifier (for example --verifier md5pin --pin HEX)")
		case 1:
		default:
			return nil, "", usagef("--pin and --opt are ambiguous with %d verifiers: write --verifier NAME:key=value instead", len(out))
		}
		if len(f.pins) > 0 {
			out[0].Options["pin"] = append(out[0].Options["pin"], f.pins...)
		}
		for _, o := range f.opts {
			k, v, ok := strings.Cut(o, "=")
			if !ok || k == "" {
				return nil, "", usagef("--opt %q: want KEY=VALUE", o)
			}
			out[0].Options[k] = append(out[0].Options[k], v)
		}
	}
	if len(out) == 0 {
		return nil, "", usagef("no verifier: give --verifier NAME (see `tlspin verifiers`)")
	}
	return out, tlspin.Require(mode), nil
}

// pinned parses --plugin-sha256: each NAME must be a verifier started.
func (a *app) pinned() (host.Checksums, error) {
	sums := host.Checksums{}
	for _, f := range a.g.pluginSHA256 {
		name, sum, err := host.ParseChecksumFlag(f)
		if err == nil {
			err = sums.Add(name, sum)
		}
		if err != nil {
			return nil, usageError{err}
		}
	}
	return sums, nil
}

// launchConfig is how this invocation finds and runs plugins: --plugin-dir,
// --plugin-checksums, --plugin-sha256, --plugin-env and the timeouts.
func (a *app) launchConfig() (*launch.Config, error) {
	c := &launch.Config{
		Self:          a.env.Self,
		PluginDirs:    a.g.pluginDirs,
		Getenv:        a.env.Getenv,
		PassEnv:       a.g.pluginEnv,
		LogLevel:      a.g.logLevel,
		Logger:        a.pluginLogger(),
		VerifyTimeout: a.g.verifyTimeout,
		StartTimeout:  a.g.startTimeout,
	}
	c.ResolveSelf()
	var err error
	if c.Pinned, err = a.pinned(); err != nil {
		return nil, err
	}
	if a.g.checksumFile != "" {
		if c.Checksums, err = host.LoadChecksums(a.g.checksumFile); err != nil {
			// The caller's mistake, as for send (exit 2).
			return nil, launch.AsConfig(err)
		}
	}
	return c, nil
}

// finder returns the verifier finder for this invocation.
func (a *app) finder() *host.Finder {
	c := &launch.Config{Self: a.env.Self, PluginDirs: a.g.pluginDirs, Getenv: a.env.Getenv}
	c.ResolveSelf()
	return c.Finder()
}

// hostConfig is how this invocation runs plugins (--plugin-env is checked
// in setup, so it cannot fail here).
func (a *app) hostConfig() host.Config {
	c := &launch.Config{Getenv: a.env.Getenv, PassEnv: a.g.pluginEnv, LogLevel: a.g.logLevel, Logger: a.pluginLogger(),
		VerifyTimeout: a.g.verifyTimeout, StartTimeout: a.g.startTimeout}
	hc, _ := c.HostConfig()
	return hc
}

// pluginLogger is the logger plugins' logs, and the library's, are
// re-emitted through (go-plugin's narration of plugin exits is debug
// level: core/host).
func (a *app) pluginLogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "tlspin", Level: hclog.LevelFromString(a.g.logLevel), Output: a.env.Stderr})
}

// precheckVerifiers refuses what startVerifiers would refuse before any
// plugin runs: the --verifier specs and checksum flags, a built-in's
// options that it does not declare, lacks or repeats, and the values it
// can check without side effects (a pin verifier's pins). unchecked names
// the verifiers that are not built in, whose options only their plugin's
// Configure judges.
func (a *app) precheckVerifiers(ctx context.Context, f *verifierFlags) (unchecked []string, err error) {
	specs, _, err := f.parse()
	if err != nil {
		return nil, err
	}
	if _, err := a.pinned(); err != nil {
		return nil, err
	}
	return launch.CheckBuiltinOptions(ctx, specs)
}

// recheckUsage is the help of serve's and proxy's --recheck.
const recheckUsage = "when a verifier's policy changes, ask again about every open connection's peer and close those no longer allowed (false: judge a connection once, at its handshake)"

// recheckWith watches connections with vs (Verifiers.Watch) unless on is
// false or there are no verifiers: peerIsClient says the TLS peer is our
// client; serverName is the name asked of a server when the connection's
// state has none (an IP address).
func recheckWith(vs *tlspin.Verifiers, on, peerIsClient bool, serverName string) server.Recheck {
	if vs == nil || !on {
		return nil
	}
	return func(cs tls.ConnectionState, addr string, since time.Time, revoke func(error)) func() {
		return vs.Watch(tlspin.PeerOf(cs, peerIsClient, addr, serverName), since, revoke)
	}
}

// startVerifiers launches every verifier the flags name through the
// library, each as its own process, combined as --require says. On error
// nothing is left running.
func (a *app) startVerifiers(ctx context.Context, f *verifierFlags) (*tlspin.Verifiers, error) {
	specs, mode, err := f.parse()
	if err != nil {
		return nil, err
	}
	if _, err := a.pinned(); err != nil {
		return nil, err
	}
	opts := []tlspin.Option{
		tlspin.WithRequire(mode),
		tlspin.WithPluginDirs(a.g.pluginDirs...),
		tlspin.WithGetenv(a.env.Getenv),
		tlspin.WithPluginEnv(a.g.pluginEnv...),
		tlspin.WithLogger(a.pluginLogger()),
		tlspin.WithVerifyTimeout(a.g.verifyTimeout),
		tlspin.WithStartTimeout(a.g.startTimeout),
	}
	for _, s := range specs {
		opts = append(opts, tlspin.WithVerifier(s.Name, s.Options))
	}
	for _, p := range a.g.pluginSHA256 {
		name, sum, _ := host.ParseChecksumFlag(p)
		opts = append(opts, tlspin.WithPluginSHA256(name, hex.EncodeToString(sum)))
	}
	if a.g.checksumFile != "" {
		opts = append(opts, tlspin.WithPluginChecksums(a.g.checksumFile))
	}
	if f.noCache {
		opts = append(opts, tlspin.WithoutCache())
	}
	if a.env.Self != "" {
		opts = append(opts, tlspin.WithTlspinBinary(a.env.Self))
	}
	return tlspin.StartWith(ctx, nil, opts...)
}

// startPlugin launches one verifier as a plugin process, configured with
// opts, the way send and serve do (same search, checksums and environment).
func (a *app) startPlugin(ctx context.Context, name string, opts verify.Options) (*host.Plugin, error) {
	c, err := a.launchConfig()
	if err != nil {
		return nil, err
	}
	return launch.StartOne(ctx, c, launch.Spec{Name: name, Options: opts})
}
