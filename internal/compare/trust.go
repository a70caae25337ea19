package compare

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
)

// DefaultVerifiers returns the verifiers compare runs when none are named,
// by label: spkipin:chain=ca is spkipin pinning the reference's issuing
// intermediate (see FillLabel).
func DefaultVerifiers() []string {
	return []string{"md5pin", "sha256pin", "spkipin", "spkipin:chain=ca", "allowlist", "tofu", "ca"}
}

// Trust is how one verifier is set up to trust the reference.
type Trust struct {
	// Options configure the verifier.
	Options verify.Options
	// PinBytes is the size of what the user must keep to trust the
	// reference: a digest, or the CA certificate.
	PinBytes int
	// Note says what the strategy protects against.
	Note string
	// Prime asks for one handshake with the reference before the
	// scenarios (trust on first use records it).
	Prime bool
}

// ErrUnknownStrategy is returned by TrustReference for a verifier compare
// does not know how to configure.
var ErrUnknownStrategy = errors.New("compare: no recipe to configure this verifier from a reference")

// TrustReference returns the options that make verifier name trust r,
// writing any file it needs into dir. desc is the verifier's description,
// used to find the option names it takes.
//
// name may be a label made by FillLabel (spkipin:chain=ca): the pin is
// then that of a CA certificate of r, with the chain option it names.
func TrustReference(name string, r *Reference, dir string, desc *verify.Description) (Trust, error) {
	if n, c, ok := parseLabel(name); ok && c.chain != "" {
		return trustCA(n, c, r, dir)
	}
	der := r.leaf.Raw
	sum := func(a pin.Algo) []byte {
		d, _ := pin.Sum(a, der)
		return d
	}
	switch name {
	case "md5pin":
		return Trust{
			Options:  verify.Options{"pin": {hex.EncodeToString(sum(pin.MD5))}},
			PinBytes: pin.MD5.Size(),
			Note:     "pins the exact certificate by MD5: every renewal needs a new pin; MD5 is collision-broken, so whoever had a hand in making the pinned certificate can make another with the same MD5 and a key of its own",
		}, nil
	case "sha256pin":
		return Trust{
			Options:  verify.Options{"pin": {hex.EncodeToString(sum(pin.SHA256))}},
			PinBytes: pin.SHA256.Size(),
			Note:     "pins the exact certificate: nothing else passes, not even a renewal with the same key (re-pin, or keep a backup pin, before rotating)",
		}, nil
	case "spkipin":
		p, err := pin.Print(pin.SPKI, sum(pin.SPKI), pin.FormatBase64)
		if err != nil {
			return Trust{}, fmt.Errorf("compare: spkipin: %w", err)
		}
		return Trust{
			Options:  verify.Options{"pin": {p}},
			PinBytes: pin.SPKI.Size(),
			Note:     "pins the public key: survives renewal and re-issue with the same key, by any CA; rejects a new key and any look-alike; ignores dates, so an expired certificate with the pinned key passes",
		}, nil
	case "allowlist":
		f := filepath.Join(dir, "allowlist.txt")
		line := fmt.Sprintf("# written by tlspin compare: the reference certificate\nsha256:%s # %s\n", hex.EncodeToString(sum(pin.SHA256)), r.leaf.Subject.CommonName)
		if err := os.WriteFile(f, []byte(line), 0o600); err != nil {
			return Trust{}, fmt.Errorf("compare: allowlist: %w", err)
		}
		return Trust{
			Options:  verify.Options{"file": {f}},
			PinBytes: pin.SHA256.Size(),
			Note:     "a file of pins (here the reference's certificate SHA-256), reloaded when it changes: rotation is an edit of the file, not a restart; protects like the pins it lists",
		}, nil
	case "tofu":
		return Trust{
			Options:  verify.Options{"file": {filepath.Join(dir, "known_pins")}},
			PinBytes: pin.SPKI.Size(),
			Note:     "trusts the key seen first (here primed with the reference), then rejects any other key like spkipin; no protection on first contact",
			Prime:    true,
		}, nil
	case "ca":
		// The option names a ca verifier may take its CA file under, in
		// order of preference.
		caFileOptions := []string{"ca", "ca-file", "cafile", "file", "roots", "root"}
		opt := ""
		if desc != nil {
			for _, o := range caFileOptions {
				if slices.ContainsFunc(desc.Options, func(d verify.Option) bool { return d.Name == o }) {
					opt = o
					break
				}
			}
		}
		if opt == "" {
			return Trust{}, fmt.Errorf("compare: ca: takes none of the options %s for a CA file", strings.Join(caFileOptions, ", "))
		}
		f := filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(f, certs.EncodeCert(r.CA), 0o600); err != nil {
			return Trust{}, fmt.Errorf("compare: ca: %w", err)
		}
		note := "X.509 chain to a trusted CA plus the host name: survives renewal and re-keying, rejects self-signed look-alikes, expired certificates and other CAs; any CA you trust can issue for your name"
		if r.issuer == nil {
			// Its own CA: a renewal is another self-signed certificate,
			// which chains to nothing trusted.
			note = "X.509 chain to a trusted CA plus the host name; the reference is self-signed, so the CA trusted is the reference itself: like sha256pin with the names and dates checked, every renewal needs the new certificate as the CA file"
		}
		return Trust{Options: verify.Options{opt: {f}}, PinBytes: len(r.CA.Raw), Note: note}, nil
	}
	return Trust{}, fmt.Errorf("%w: %q (known: %s)", ErrUnknownStrategy, name, strings.Join(DefaultVerifiers(), ", "))
}
