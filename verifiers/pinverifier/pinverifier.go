// Package pinverifier is the verifier shared by the pin-based built-ins
// (md5pin, sha256pin, spkipin): accept when a digest of a certificate of
// the peer's chain equals one of the configured pins.
//
// Options every pin verifier understands:
//
//	pin=VALUE        a pin; repeat for backup pins (any one matching is enough)
//	chain=leaf|any|ca  which certificate must match (default leaf)
//	expires=YYYY-MM-DD after that day the pin set rejects everything
package pinverifier

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
)

// Chain says which certificate of the peer chain a pin must match.
type Chain string

const (
	// ChainLeaf matches the leaf only.
	ChainLeaf Chain = "leaf"
	// ChainAny matches any certificate of the chain.
	ChainAny Chain = "any"
	// ChainCA matches any certificate but the leaf (pin your CA).
	ChainCA Chain = "ca"
)

// Info describes one pin verifier.
type Info struct {
	Name    string
	Version string
	Summary string
	Algo    pin.Algo
	// PinHelp describes the accepted pin formats.
	PinHelp string
	// Logger receives warnings (MD5 is weak, ...); nil discards them.
	Logger hclog.Logger
	// Now returns the current time (tests); nil means time.Now.
	Now func() time.Time
}

// Verifier is a configured pin verifier.
type Verifier struct {
	info Info
	config
}

var _ verify.Verifier = (*Verifier)(nil)

// New returns an unconfigured pin verifier.
func New(info Info) *Verifier {
	if info.Logger == nil {
		info.Logger = hclog.NewNullLogger()
	}
	if info.Now == nil {
		info.Now = time.Now
	}
	return &Verifier{info: info, config: config{set: pin.Set{Algo: info.Algo}, chain: ChainLeaf}}
}

// Describe lists the options.
func (v *Verifier) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{
		Name:    v.info.Name,
		Version: v.info.Version,
		Summary: v.info.Summary,
		Options: []verify.Option{
			{Name: "pin", Description: v.info.PinHelp + "; repeat for backup pins", Required: true, Repeated: true},
			{Name: "chain", Description: "which certificate must match: leaf (default), any, or ca (any but the leaf)"},
			{Name: "expires", Description: "YYYY-MM-DD after which this pin set rejects every peer (fail closed)"},
		},
	}, nil
}

var _ verify.ValueChecker = (*Verifier)(nil)

// config is what a pin verifier's options say.
type config struct {
	set     pin.Set
	chain   Chain
	expires time.Time // zero: never
	// matched is what an allow's Matched says of each pin of set, made
	// once: printing a pin on every call was a tenth of a plugin's CPU.
	matched []string
}

// parse reads the options, without side effects.
func (v *Verifier) parse(opts verify.Options) (*config, error) {
	d, _ := v.Describe(context.Background())
	if err := verify.CheckOptions(d, opts); err != nil {
		return nil, err
	}
	c := &config{set: pin.Set{Algo: v.info.Algo}, chain: ChainLeaf}
	for _, p := range opts["pin"] {
		if err := c.set.Add(p); err != nil {
			return nil, &verify.OptionError{Option: "pin", Value: p, Err: err}
		}
	}
	if ch := opts["chain"]; len(ch) == 1 {
		var err error
		if c.chain, err = ParseChain(ch[0]); err != nil {
			return nil, &verify.OptionError{Option: "chain", Value: ch[0], Err: err}
		}
	}
	if e := opts["expires"]; len(e) == 1 {
		t, err := ParseExpiry(e[0])
		if err != nil {
			return nil, &verify.OptionError{Option: "expires", Value: e[0], Err: err}
		}
		c.expires = t
	}
	for _, p := range c.set.Pins {
		c.matched = append(c.matched, fmt.Sprintf("%s:%s", v.info.Algo, p))
	}
	return c, nil
}

// CheckValues checks the options as Configure does, and keeps nothing.
func (v *Verifier) CheckValues(opts verify.Options) error {
	_, err := v.parse(opts)
	return err
}

// Configure parses the pins and options.
func (v *Verifier) Configure(_ context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	c, err := v.parse(req.Options)
	if err != nil {
		return nil, err
	}
	if !c.expires.IsZero() && !v.info.Now().Before(c.expires) {
		v.info.Logger.Warn(fmt.Sprintf("pin set expired on %s: every peer will be rejected until the pins are renewed", c.expires.AddDate(0, 0, -1).Format(time.DateOnly)))
	}
	if v.info.Algo.Weak() {
		v.info.Logger.Warn(fmt.Sprintf("%s pins are weak: %[1]s is collision-broken; prefer sha256pin, or spkipin which also survives renewal", strings.ToUpper(string(v.info.Algo))))
	}
	v.config = *c
	return &verify.ConfigureResponse{NeedsChain: c.chain != ChainLeaf}, nil
}

// ParseChain parses the chain option: leaf, any or ca (any case).
func ParseChain(s string) (Chain, error) {
	switch c := Chain(strings.ToLower(strings.TrimSpace(s))); c {
	case ChainLeaf, ChainAny, ChainCA:
		return c, nil
	}
	return "", errors.New("want leaf, any or ca")
}

// Candidates returns the certificates of peerChain (leaf first) that a
// pin may match under c.
func Candidates(c Chain, peerChain [][]byte) [][]byte {
	switch c {
	case ChainAny:
		return peerChain
	case ChainCA:
		if len(peerChain) == 0 {
			return nil
		}
		return peerChain[1:]
	}
	if len(peerChain) == 0 {
		return nil
	}
	return peerChain[:1]
}

// minExpiryYear is the first year ParseExpiry accepts.
const minExpiryYear = 1970

// ParseExpiry parses YYYY-MM-DD; the pin set is valid through that whole
// day (UTC) and expires at the start of the next.
func ParseExpiry(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, errors.New("want a date as YYYY-MM-DD")
	}
	// Callers take the zero time for "never expires", and 0000-12-31 ends
	// at exactly the zero time: such a date would fail open. A pin set
	// that expired before 1970 can only be a typo, so those years go too.
	if t.Year() < minExpiryYear {
		return time.Time{}, fmt.Errorf("date %q is out of range (want a year from %d)", s, minExpiryYear)
	}
	return t.AddDate(0, 0, 1), nil
}

// Verify accepts when a chosen certificate's digest equals a pin and, for
// a certificate after the leaf, the leaf chains to it by signature (see
// Find).
func (v *Verifier) Verify(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
	if len(req.PeerChain) == 0 {
		return &verify.Verdict{Reason: "peer sent no certificate"}, nil
	}
	now := v.info.Now()
	if !v.expires.IsZero() && !now.Before(v.expires) {
		return &verify.Verdict{Reason: fmt.Sprintf("%s pin set expired on %s: rejecting every peer until the pins are renewed (failing closed)",
			v.info.Name, v.expires.AddDate(0, 0, -1).Format(time.DateOnly))}, nil
	}
	// pinOf[i] is the pin certificate i of the chain matched.
	var short [4]int
	pinOf := short[:]
	if len(req.PeerChain) > len(short) {
		pinOf = make([]int, len(req.PeerChain))
	}
	found, err := Find(v.chain, req, now, func(i int, der []byte) (bool, error) {
		p, err := v.set.Index(der)
		pinOf[i] = p
		return p >= 0, err
	})
	switch {
	case errors.Is(err, ErrBrokenChain):
		return &verify.Verdict{Reason: fmt.Sprintf("%s: %v", v.info.Name, err)}, nil
	case err != nil:
		return &verify.Verdict{Reason: fmt.Sprintf("cannot fingerprint peer certificate: %v", err)}, nil
	case found != nil:
		return &verify.Verdict{Allow: true, Matched: v.matched[pinOf[found.Index]], CacheFor: v.cacheFor(now, found.Until)}, nil
	}
	return &verify.Verdict{Reason: v.mismatch(req), CacheFor: v.cacheFor(now, time.Time{})}, nil
}

// CacheFor is how long the host may reuse a pin verifier's verdict: the
// pins are fixed for the life of the plugin, so only the expiry of the pin
// set, and of a verified chain, bound it.
const CacheFor = time.Minute

func (v *Verifier) cacheFor(now, until time.Time) time.Duration {
	return CacheBound(CacheFor, now, v.expires, until)
}

// CacheBound returns d, shortened so that a verdict is never reused past
// any of the deadlines (a zero deadline does not bound it).
func CacheBound(d time.Duration, now time.Time, deadlines ...time.Time) time.Duration {
	for _, t := range deadlines {
		if !t.IsZero() {
			d = min(d, t.Sub(now))
		}
	}
	return max(d, 0)
}

// mismatch says what was received, in the pin's own format, and how to
// trust it. With chain=any or ca it lists every candidate certificate. A
// pin that is the certificate's digest under another algorithm (its sha256
// fingerprint given to spkipin) is pointed out.
func (v *Verifier) mismatch(req *verify.Request) string {
	pins := make([]string, len(v.set.Pins))
	for i, p := range v.set.Pins {
		pins[i] = p.String()
	}
	expected := strings.Join(pins, " or ")
	// wrongAlgo explains a pin that matches der under another algorithm.
	wrongAlgo := func(der []byte) string {
		p, other, ok := v.set.OtherAlgo(der)
		if !ok {
			return ""
		}
		use := map[pin.Algo]string{pin.MD5: "md5pin", pin.SHA256: "sha256pin", pin.SPKI: "spkipin"}[other]
		if use == "" {
			return fmt.Sprintf("; note: the pin %s is this certificate's %s digest, not its %s pin", p, other, v.info.Algo)
		}
		return fmt.Sprintf("; note: the pin %s is this certificate's %s digest, not its %s pin: give it to the %s verifier instead, or pin the %s value above", p, other, v.info.Algo, use, v.info.Algo)
	}
	if v.chain == ChainLeaf {
		fp, err := v.set.Fingerprint(req.PeerChain[0])
		if err != nil {
			return fmt.Sprintf("%s: peer certificate does not match any pin, and cannot be fingerprinted: %v", v.info.Name, err)
		}
		return fmt.Sprintf("%s mismatch: leaf certificate%s has %s%s, expected %s%s; if you trust this peer, pin it: %s",
			v.info.Name, Subject(req.PeerChain[0]), v.algoNamed(), fp, expected, wrongAlgo(req.PeerChain[0]), TrustCommand(req, v.info.Name, fp))
	}
	cands := Candidates(v.chain, req.PeerChain)
	if len(cands) == 0 {
		return fmt.Sprintf("%s mismatch: chain=%s but the peer sent only its leaf certificate, expected a certificate with %s %s", v.info.Name, v.chain, v.info.Algo, expected)
	}
	var got []string
	first, note := "", ""
	for i, der := range cands {
		fp, err := v.set.Fingerprint(der)
		if err != nil {
			fp = fmt.Sprintf("(cannot fingerprint: %v)", err)
		} else if first == "" {
			first = fp
		}
		if note == "" {
			note = wrongAlgo(der)
		}
		got = append(got, fmt.Sprintf("#%d%s %s", i+len(req.PeerChain)-len(cands), Subject(der), fp))
	}
	msg := fmt.Sprintf("%s mismatch: no certificate of the chain (chain=%s) matches; it has %s%s, expected %s%s",
		v.info.Name, v.chain, v.algoNamed(), strings.Join(got, ", "), expected, note)
	if first != "" {
		msg += "; if you trust this peer, pin it: " + TrustCommand(req, v.info.Name+":chain="+string(v.chain), first)
	}
	return msg
}

// algoNamed is the name of the pins' algorithm to put before a
// fingerprint printed in the pins' format ("md5 "), or "" for openssl's
// format, which names it itself ("md5 Fingerprint=BD:E4:...").
func (v *Verifier) algoNamed() string {
	if v.set.Style == pin.FormatOpenSSL {
		return ""
	}
	return string(v.info.Algo) + " "
}

// Subject returns ` (subject "...")` for a DER certificate, or "".
func Subject(der []byte) string {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" (subject %q)", c.Subject.String())
}

// TrustCommand returns the tlspin command line that would accept the peer
// of req with verifier name pinned to value.
func TrustCommand(req *verify.Request, name, value string) string {
	if req.Side == verify.ServerVerifiesClient {
		return fmt.Sprintf("tlspin serve --verifier %s --pin %s ...", name, ShellQuote(value))
	}
	addr := req.RemoteAddr
	if addr == "" {
		addr = "HOST:PORT"
	}
	return fmt.Sprintf("tlspin send --verifier %s --pin %s %s", name, ShellQuote(value), ShellQuote(addr))
}

// ShellQuote quotes s for a POSIX shell when it needs quoting.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/+=[]@,%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
