package compare

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/verifiers/pinverifier"
)

// ErrBadFill is returned by FillLabel and TrustReference for a CA pin
// compare cannot fill in: a bad chain or ca option, or a reference with
// no CA.
var ErrBadFill = errors.New("compare: cannot fill in the CA pin")

// Which certificate of the reference a CA pin is filled in with (compare's
// own option ca=, never passed to the verifier).
const (
	// PinIssuer is the CA that issued the reference leaf: the generated
	// reference's intermediate, which its server sends after the leaf.
	PinIssuer = "issuer"
	// PinRoot is the reference's root CA.
	PinRoot = "root"
)

// fillable reports whether compare can fill in the pin of verifier name
// for chain=ca|any, and the algorithm it pins with.
func fillable(name string) (pin.Algo, bool) {
	switch name {
	case "md5pin":
		return pin.MD5, true
	case "sha256pin":
		return pin.SHA256, true
	case "spkipin":
		return pin.SPKI, true
	case "allowlist":
		return pin.SHA256, true
	}
	return "", false
}

// FillLabel returns the column label of verifier name given opts on the
// command line, and whether compare configures it (fill true) rather than
// using opts as given. A pin verifier (md5pin, sha256pin, spkipin,
// allowlist) given chain=ca or chain=any, and maybe ca=issuer|root, but no
// pin or file, is filled in with a CA certificate of the reference and
// labelled NAME:chain=ca or NAME:chain=ca,ca=root (issuer is the default);
// chain=leaf alone is the verifier's own recipe, labelled NAME. Anything
// else is used as given, labelled NAME.
func FillLabel(name string, opts verify.Options) (label string, fill bool, err error) {
	if _, ok := fillable(name); !ok {
		return name, false, nil
	}
	for k := range opts {
		if k != "chain" && k != "ca" {
			return name, false, nil
		}
	}
	c, err := fillOptions(opts)
	if err != nil {
		return "", false, fmt.Errorf("%w: %s: %w", ErrBadFill, name, err)
	}
	if c.chain == "" {
		return name, true, nil
	}
	return c.label(name), true, nil
}

// caPin is what a CA-pin label says: the chain mode, and which
// certificate of the reference to pin.
type caPin struct {
	chain pinverifier.Chain
	ca    string
}

func (c caPin) label(name string) string {
	l := name + ":chain=" + string(c.chain)
	if c.ca == PinRoot {
		l += ",ca=" + PinRoot
	}
	return l
}

// fillOptions parses chain and ca; chain is empty for chain=leaf.
func fillOptions(opts verify.Options) (caPin, error) {
	var c caPin
	one := func(k string) (string, error) {
		v := opts[k]
		if len(v) > 1 {
			return "", fmt.Errorf("%s given twice (%q)", k, v)
		}
		if len(v) == 0 {
			return "", nil
		}
		return v[0], nil
	}
	ch, err := one("chain")
	if err != nil {
		return c, err
	}
	ca, err := one("ca")
	if err != nil {
		return c, err
	}
	if ch != "" {
		if c.chain, err = pinverifier.ParseChain(ch); err != nil {
			return c, fmt.Errorf("chain %q: %w", ch, err)
		}
	}
	if c.chain == pinverifier.ChainLeaf {
		c.chain = ""
	}
	if ca != "" && c.chain == "" {
		return c, fmt.Errorf("ca %q needs chain=ca or chain=any (it says which CA certificate to pin)", ca)
	}
	switch strings.ToLower(strings.TrimSpace(ca)) {
	case "", PinIssuer:
		c.ca = PinIssuer
	case PinRoot:
		c.ca = PinRoot
	default:
		return c, fmt.Errorf("ca %q: want %s (the CA that issued the leaf) or %s", ca, PinIssuer, PinRoot)
	}
	return c, nil
}

// parseLabel reads a label FillLabel made: the verifier's name, and the
// CA pin (zero for a plain name). ok is false for a label FillLabel would
// not have made.
func parseLabel(label string) (name string, c caPin, ok bool) {
	name, rest, has := strings.Cut(label, ":")
	if !has {
		return name, caPin{}, true
	}
	opts := verify.Options{}
	for _, kv := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(kv, "=")
		opts[k] = append(opts[k], v)
	}
	l, fill, err := FillLabel(name, opts)
	if err != nil || !fill || l != label {
		return "", caPin{}, false
	}
	c, _ = fillOptions(opts)
	return name, c, true
}

// trustCA configures pin verifier name, with c.chain, to trust the CA
// certificate of r that c names.
func trustCA(name string, c caPin, r *Reference, dir string) (Trust, error) {
	if r.issuer == nil {
		return Trust{}, fmt.Errorf("%w: %s: the reference is self-signed, so it has no CA to pin (give a --ref issued by a CA, with --ref-ca)", ErrBadFill, c.label(name))
	}
	cert, which := r.issuer, "the intermediate CA that issued the reference"
	switch {
	case r.issuer == r.CA && c.ca == PinRoot:
		which = "the CA that issued the reference (it has no intermediate), its root"
	case r.issuer == r.CA:
		which = "the CA that issued the reference (it has no intermediate)"
	case c.ca == PinRoot:
		cert, which = r.CA, "the root CA above the reference's intermediate"
	}
	algo, _ := fillable(name)
	d, err := pin.Sum(algo, cert.Raw)
	if err != nil {
		return Trust{}, fmt.Errorf("compare: %s: %w", c.label(name), err)
	}
	opts := verify.Options{"chain": {string(c.chain)}}
	switch name {
	case "spkipin":
		p, err := pin.Print(pin.SPKI, d, pin.FormatBase64)
		if err != nil {
			return Trust{}, fmt.Errorf("compare: %s: %w", c.label(name), err)
		}
		opts["pin"] = []string{p}
	case "allowlist":
		f := filepath.Join(dir, "allowlist.txt")
		line := fmt.Sprintf("# written by tlspin compare: %s\nsha256:%s # %s\n", which, hex.EncodeToString(d), cert.Subject.CommonName)
		if err := os.WriteFile(f, []byte(line), 0o600); err != nil {
			return Trust{}, fmt.Errorf("compare: %s: %w", c.label(name), err)
		}
		opts["file"] = []string{f}
	default:
		opts["pin"] = []string{hex.EncodeToString(d)}
	}
	what := map[pin.Algo]string{pin.MD5: "certificate's MD5", pin.SHA256: "certificate's SHA-256", pin.SPKI: "public key"}[algo]
	note := fmt.Sprintf("pins the %s of %s (%q), chain=%s: accepts any leaf it issued, whatever the leaf's key, so it survives renewal and a rekeyed leaf; the leaf must chain to the pinned certificate by signature, so a forged chain that merely carries it is rejected, and the path's dates are checked, so an expired leaf is rejected; a move to another CA needs a new pin",
		what, which, cert.Subject.CommonName, c.chain)
	if c.chain == pinverifier.ChainAny {
		note += "; chain=any lets the leaf match a pin too, so with a CA pin alone it judges as chain=ca"
	}
	switch {
	case c.ca == PinIssuer && r.issuer != r.CA:
		note += "; a new intermediate needs a new pin (pin the root, ca=root, to survive that)"
	case r.issuer != r.CA:
		note += "; survives a new intermediate under the same root"
	}
	if algo == pin.MD5 {
		note += "; MD5 is collision-broken: whoever had a hand in making the pinned CA certificate can make another with the same MD5"
	}
	if !slices.ContainsFunc(r.chain, func(der []byte) bool { return bytes.Equal(der, cert.Raw) }) {
		note += "; but the reference's server does not send it, and a pin is matched only against what the peer sends, so it rejects every scenario (have the server send it, --send-root for the generated reference, or pin the intermediate)"
	}
	return Trust{Options: opts, PinBytes: algo.Size(), Note: note}, nil
}
