package tlspin

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/launch"
)

// Require says how the verdicts of several verifiers combine.
type Require string

const (
	// RequireAll: every verifier must allow the peer (the default).
	RequireAll Require = "all"
	// RequireAny: one verifier allowing the peer is enough.
	RequireAny Require = "any"
)

// An Option tunes StartWith; a nil Option is none.
type Option func(*options)

type options struct {
	launch        launch.Config
	specs         []launch.Spec
	require       Require
	noCache       bool
	noRecheck     bool
	maxHandshakes int
	hsTimeout     time.Duration
	clientCert    *tls.Certificate
	sumFiles      []string
	errs          []error
	logSet        bool
}

// WithVerifier adds a verifier by name (or path) with its options, as a
// spec string would, but with values that may contain any character.
func WithVerifier(name string, opts map[string][]string) Option {
	return func(o *options) {
		cp := verify.Options{}
		for k, v := range opts {
			cp[k] = append([]string(nil), v...)
		}
		o.specs = append(o.specs, launch.Spec{Name: name, Options: cp})
	}
}

// WithRequire sets how several verifiers combine (default RequireAll).
func WithRequire(r Require) Option { return func(o *options) { o.require = r } }

// WithPluginDirs adds directories searched first for tlspin-verifier-NAME
// executables (then $TLSPIN_PLUGIN_PATH, this program's directory, $PATH).
func WithPluginDirs(dirs ...string) Option {
	return func(o *options) { o.launch.PluginDirs = append(o.launch.PluginDirs, dirs...) }
}

// WithPluginSHA256 refuses to run verifier name unless its executable has
// this SHA-256 (64 hex digits, as sha256sum prints). For a built-in
// verifier the executable is the program that runs it. Start fails if no
// verifier started is called name: a misspelt name must not leave the
// intended plugin unpinned.
func WithPluginSHA256(name, hexSum string) Option {
	return func(o *options) {
		sum, err := host.ParseSHA256(hexSum)
		if err == nil && name == "" {
			err = errors.New("tlspin: WithPluginSHA256: empty verifier name")
		}
		if err == nil {
			if o.launch.Pinned == nil {
				o.launch.Pinned = host.Checksums{}
			}
			err = o.launch.Pinned.Add(name, sum)
		}
		if err != nil {
			o.errs = append(o.errs, launch.AsConfig(err))
		}
	}
}

// WithPluginChecksums reads checksum pins from a file of sha256sum lines
// ("HEX  tlspin-verifier-NAME"); it may list verifiers not started. Start
// fails with ErrBadConfig if another user may have written the file or may
// replace it (checked as an allowlist is), or if it is not a regular file.
func WithPluginChecksums(file string) Option {
	return func(o *options) { o.sumFiles = append(o.sumFiles, file) }
}

// WithPluginEnv passes the program's variables keys through to every
// plugin (for debugging: PYTHONPATH, NODE_OPTIONS). Plugins otherwise get
// only PATH, HOME, TMPDIR and TLSPIN_LOG_LEVEL. A key tlspin sets for the
// plugin itself (those, go-plugin's PLUGIN_* and TLSPIN_VERIFIER_PLUGIN,
// TLSPIN_PLUGIN_CHANNEL_FD) makes Start fail with ErrBadConfig: it would
// replace tlspin's value.
func WithPluginEnv(keys ...string) Option {
	return func(o *options) { o.launch.PassEnv = append(o.launch.PassEnv, keys...) }
}

// WithVerifyTimeout bounds one decision on one peer (default 5s); a
// verifier slower than that rejects the peer (ErrVerifierFailed).
func WithVerifyTimeout(d time.Duration) Option {
	return func(o *options) { o.launch.VerifyTimeout = d }
}

// WithStartTimeout bounds starting one verifier (default 10s).
func WithStartTimeout(d time.Duration) Option {
	return func(o *options) { o.launch.StartTimeout = d }
}

// WithLogger sends tlspin's and the plugins' logs to l. The default logs
// to stderr at $TLSPIN_LOG_LEVEL, warn when unset; a nil l keeps it.
// Plugins are given l's level as their TLSPIN_LOG_LEVEL.
func WithLogger(l hclog.Logger) Option {
	return func(o *options) { o.launch.Logger, o.logSet = l, l != nil }
}

// WithoutCache asks the verifiers on every handshake, even when a verdict
// says it may be reused for a while.
func WithoutCache() Option { return func(o *options) { o.noCache = true } }

// WithoutRecheck judges the connections of Dial and Listen once, at their
// handshake. By default each is watched (see Watch) for as long as it is
// open: when a verifier's policy changes, the verifiers are asked again
// about its peer, and a peer they no longer allow, or cannot decide on,
// has its connection closed underneath the *tls.Conn (its reads and
// writes fail), with a warning. Watch is unaffected.
func WithoutRecheck() Option { return func(o *options) { o.noRecheck = true } }

// DefaultMaxHandshakes bounds the handshakes a Listen listener runs at
// once, unless WithMaxHandshakes says otherwise.
const DefaultMaxHandshakes = 1024

// WithMaxHandshakes bounds the handshakes a Listen listener runs at once
// (default DefaultMaxHandshakes; n must be at least 1). When a new client
// arrives with the bound reached, the handshake that began first among
// those of the address (for IPv6, the /64) holding the most is closed to
// make room: clients that connect and never finish (or finish slowly on
// purpose) cannot hold the listener's memory and file descriptors, nor
// keep out clients that do finish, and a host that connects fast closes
// its own handshakes, not those of clients on a long path. What the
// handshakes in progress have read is bounded too, to 16 MiB in all: past
// it, the handshake that began first among those of the address that
// has read the most is closed (a client may send a certificate message
// of 256 KiB and stop short of its end, needing no key).
func WithMaxHandshakes(n int) Option {
	return func(o *options) {
		if n < 1 {
			o.errs = append(o.errs, launch.Configf("tlspin: WithMaxHandshakes(%d): want at least 1", n))
			return
		}
		o.maxHandshakes = n
	}
}

// WithHandshakeTimeout bounds each TLS handshake of Dial and of a Listen
// listener, its verification and record included (default
// DefaultHandshakeTimeout; d must be positive): a peer that stalls its
// handshake, or trickles it a byte at a time, is given up on then. Dial's
// context bounds it too, when it ends sooner.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.errs = append(o.errs, launch.Configf("tlspin: WithHandshakeTimeout(%s): want a positive duration", d))
			return
		}
		o.hsTimeout = d
	}
}

// WithClientCertificate makes Dial present cert to a server that asks for
// a client certificate (mutual TLS, as a Listen listener's does),
// whatever certificate authorities its request names, as tlspin send
// --cert does. It goes only to a server the verifiers allowed: they
// decide before it is sent. cert must hold a certificate and its private
// key (tls.LoadX509KeyPair makes one from files). The configurations of
// ClientConfig, ClientConfigForAddr and HookClientConfig are left as they
// are: set Certificates or GetClientCertificate on them.
func WithClientCertificate(cert tls.Certificate) Option {
	return func(o *options) {
		if err := presentable(cert); err != nil {
			o.errs = append(o.errs, launch.Configf("tlspin: WithClientCertificate: %v", err))
			return
		}
		o.clientCert = &cert
	}
}

// WithGetenv makes Start read the environment through getenv instead of
// os.Getenv: $PATH and $TLSPIN_PLUGIN_PATH to find verifiers, the variables
// passed to plugins, and $TLSPIN_LOG_LEVEL. A nil getenv is os.Getenv.
func WithGetenv(getenv func(string) string) Option {
	return func(o *options) {
		if getenv == nil {
			getenv = os.Getenv
		}
		o.launch.Getenv = getenv
	}
}

// WithTlspinBinary runs built-in verifiers as `path __verifier NAME`
// (a tlspin binary) instead of choosing (see ServeBuiltin). It decides
// whom to trust, so it gets the checks a plugin gets: one that another
// user owns or may write or replace, or that is not a regular file, is
// refused, and Start then fails for a built-in verifier, saying why.
func WithTlspinBinary(path string) Option {
	return func(o *options) { o.launch.Self = path }
}

// apply collects opts and checks them.
func (o *options) apply(opts []Option) error {
	for _, f := range opts {
		if f != nil {
			f(o)
		}
	}
	switch o.require {
	case "":
		o.require = RequireAll
	case RequireAll, RequireAny:
	default:
		o.errs = append(o.errs, launch.Configf("tlspin: unknown Require %q (want %q or %q)", string(o.require), RequireAll, RequireAny))
	}
	for _, f := range o.sumFiles {
		// A file that cannot be read is as much the caller's mistake as
		// one that does not parse: the CLI exits 2 for either.
		sums, err := host.LoadChecksums(f)
		if err != nil {
			o.errs = append(o.errs, launch.AsConfig(err))
			continue
		}
		if o.launch.Checksums == nil {
			o.launch.Checksums = host.Checksums{}
		}
		for name, sum := range sums {
			if err := o.launch.Checksums.Add(name, sum); err != nil {
				o.errs = append(o.errs, launch.AsConfig(fmt.Errorf("%w (in %s)", err, f)))
			}
		}
	}
	return errors.Join(o.errs...)
}
