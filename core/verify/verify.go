// Package verify defines what a tlspin verifier is: the Verifier interface,
// the Request it decides on and the Verdict it returns. Every verifier,
// built in or written by a user, in process or behind a plugin, implements
// it; the TLS client and server only ever talk to this interface.
package verify

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Verifier decides whether a TLS peer is trusted.
//
// Every method may block and takes a context; every method returns a
// response pointer and an error so that fields can be added later without
// breaking implementations.
type Verifier interface {
	// Describe says what the verifier is and which options it understands.
	Describe(ctx context.Context) (*Description, error)
	// Configure is called once before the first Verify. A bad option must
	// produce an error that names the option and quotes the bad value.
	Configure(ctx context.Context, req *ConfigureRequest) (*ConfigureResponse, error)
	// Verify decides on one peer. An error is a rejection.
	Verify(ctx context.Context, req *Request) (*Verdict, error)
}

// Decider is the part of a verifier that deciding on a peer needs: the TLS
// code, policies, the verdict cache and benchmarks all take one. A Verifier
// is a Decider; so are a policy and a cached verifier.
type Decider interface {
	Verify(ctx context.Context, req *Request) (*Verdict, error)
}

// Side says who is verifying whom.
type Side int

const (
	// SideUnspecified is never valid in a Request.
	SideUnspecified Side = iota
	// ClientVerifiesServer is a client checking the server it dialled.
	ClientVerifiesServer
	// ServerVerifiesClient is a server checking a client certificate.
	ServerVerifiesClient
)

// String returns "client-verifies-server" or "server-verifies-client".
func (s Side) String() string {
	switch s {
	case ClientVerifiesServer:
		return "client-verifies-server"
	case ServerVerifiesClient:
		return "server-verifies-client"
	}
	return fmt.Sprintf("side(%d)", int(s))
}

// Request is one peer to decide on.
type Request struct {
	// PeerChain holds the DER certificates the peer sent, leaf first.
	PeerChain   [][]byte
	ServerName  string
	Side        Side
	RemoteAddr  string
	TLSVersion  uint16
	CipherSuite uint16
	ALPN        string
	DidResume   bool
	// NoCommit says no Commit follows, whatever the verdict: the request
	// is not a handshake's (the peer of an open connection asked about
	// again after a policy change, a certificate checked outside any
	// handshake). Answer as otherwise, but keep nothing for a Commit.
	NoCommit bool
}

// Leaf returns the DER of the peer's leaf certificate, or nil.
func (r *Request) Leaf() []byte {
	if r == nil || len(r.PeerChain) == 0 {
		return nil
	}
	return r.PeerChain[0]
}

// ChainDigest returns the SHA-256 of the peer chain, used as a cache key.
func (r *Request) ChainDigest() [sha256.Size]byte {
	h := sha256.New()
	var n [4]byte
	for _, c := range r.PeerChain {
		l := len(c)
		n[0], n[1], n[2], n[3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		h.Write(n[:])
		h.Write(c)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Verdict is a verifier's decision.
type Verdict struct {
	Allow bool
	// Reason explains the decision; on rejection it should say what was
	// received and how to trust it.
	Reason string
	// Matched names the pin or rule that matched, for logs.
	Matched string
	// CacheFor is how long the host may reuse this verdict for the same
	// chain, server name and side. Zero means do not cache.
	CacheFor time.Duration
	// Commit says the allow holds only if the verifier may record the peer
	// (a TOFU pin) once the handshake has succeeded: the host then calls
	// the verifier's Commit with the same request, and never caches this
	// verdict. Verify itself must not record anything. A verifier that
	// sets it must implement Committer: otherwise the host rejects the
	// connection (a record it cannot make).
	Commit bool
}

// Committer is implemented by verifiers that record something about a
// peer they allowed (a TOFU pin). crypto/tls asks for the decision before
// it checks the peer's signature, so the host calls Commit only after the
// handshake has succeeded, with the request Verify decided on. Commit
// must decide again rather than trust a remembered verdict: it records
// only what Verify would allow now, and does nothing otherwise.
type Committer interface {
	Commit(ctx context.Context, req *Request) (*CommitResponse, error)
}

// CommitResponse is what Commit returns (nothing yet).
type CommitResponse struct{}

// Option describes one option a verifier understands.
type Option struct {
	Name        string
	Description string
	Required    bool
	Repeated    bool
}

// Description says what a verifier is.
type Description struct {
	Name    string
	Version string
	Summary string
	Options []Option
}

// Options maps an option name to its values, in the order given.
type Options map[string][]string

// ConfigureRequest carries the user's options.
type ConfigureRequest struct {
	Options Options
}

// ConfigureResponse tells the host what the verifier needs.
type ConfigureResponse struct {
	// NeedsChain asks for the whole peer chain; otherwise Verify receives
	// the leaf only.
	NeedsChain bool
}

var (
	// ErrRejected wraps every rejection returned by Check.
	ErrRejected = errors.New("verify: peer rejected")
	// ErrBadOption is wrapped by Configure errors caused by user input.
	ErrBadOption = errors.New("verify: bad option")
	// ErrNoPolicyWatch is returned by a plugin channel's WatchPolicy when
	// the plugin said it has no policy changes to report (it described
	// itself so, or answered UNIMPLEMENTED): its verdicts hold for their
	// CacheFor. Any other end of a watch means changes may go unheard.
	ErrNoPolicyWatch = errors.New("verify: the verifier reports no policy changes")
)

// OptionError reports a bad option value; it wraps ErrBadOption.
type OptionError struct {
	Option string
	Value  string
	Err    error
}

// Error names the option and quotes the bad value.
func (e *OptionError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("option %q: %v", e.Option, e.Err)
	}
	return fmt.Sprintf("option %s=%q: %v", e.Option, e.Value, e.Err)
}

// Unwrap lets errors.Is match ErrBadOption and the cause.
func (e *OptionError) Unwrap() []error { return []error{ErrBadOption, e.Err} }

// maxNamed bounds the options an unknown option's error names: a plugin
// declares as many as it likes.
const maxNamed = 16

// CheckOptions rejects options that d does not declare, required options
// that are missing, and repeated values for options that are not
// repeatable. Verifiers call it first thing in Configure.
func CheckOptions(d *Description, opts Options) error {
	known := make(map[string]Option, len(d.Options))
	names := make([]string, 0, len(d.Options))
	for _, o := range d.Options {
		known[o.Name] = o
		names = append(names, o.Name)
	}
	sort.Strings(names)
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o, ok := known[k]
		if !ok {
			takes := strings.Join(names[:min(len(names), maxNamed)], ", ")
			if more := len(names) - maxNamed; more > 0 {
				takes += fmt.Sprintf(" and %d more", more)
			}
			return &OptionError{Option: k, Err: fmt.Errorf("%s does not take this option (it takes: %s)", d.Name, takes)}
		}
		if !o.Repeated && len(opts[k]) > 1 {
			return &OptionError{Option: k, Value: strings.Join(opts[k], ","), Err: errors.New("given more than once")}
		}
	}
	for _, o := range d.Options {
		if o.Required && len(opts[o.Name]) == 0 {
			return &OptionError{Option: o.Name, Err: fmt.Errorf("%s requires it", d.Name)}
		}
	}
	return nil
}

// ValueChecker is implemented by verifiers that can check their options'
// values without side effects: nothing kept, nothing logged, and only as
// much read as stays cheap (that a file can be opened; what is in it when
// it is small). A host calls it, in process, for a built-in verifier of
// its own build before it connects anywhere, so that a malformed pin, a
// missing file or a small malformed one is refused before a ClientHello
// leaves; Configure still checks everything.
type ValueChecker interface {
	CheckValues(opts Options) error
}

// PolicyChange says a verifier's policy changed, so cached verdicts of that
// verifier must be dropped.
type PolicyChange struct {
	Epoch  uint64
	Reason string
}

// PolicyNotifier is implemented by verifiers whose policy can change while
// they run (an allowlist reloaded, a TOFU pin recorded).
type PolicyNotifier interface {
	// PolicyChanges returns a channel of changes that ends with ctx.
	// Closed before, it says changes can no longer be announced (a
	// watcher that failed): the host restarts the plugin.
	PolicyChanges(ctx context.Context) <-chan PolicyChange
}
