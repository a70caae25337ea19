// Package pin computes certificate fingerprints and parses and prints pins
// in the formats users paste: hex (any case, with or without colons),
// base64, openssl's "md5 Fingerprint=..." line, curl's sha256//BASE64,
// OkHttp's sha256/BASE64, HPKP's pin-sha256="BASE64" and ghostunnel's
// sha256:BASE64. Pins compare in constant time.
package pin

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Algo names what a pin is a digest of.
type Algo string

const (
	// MD5 is the MD5 of the certificate's DER (the recipe's pin; weak).
	MD5 Algo = "md5"
	// SHA1 is the SHA-1 of the certificate's DER (weak).
	SHA1 Algo = "sha1"
	// SHA256 is the SHA-256 of the certificate's DER.
	SHA256 Algo = "sha256"
	// SPKI is the SHA-256 of the certificate's SubjectPublicKeyInfo DER;
	// it survives renewal with the same key.
	SPKI Algo = "spki"
)

// Algos lists every algorithm, in the order tlspin prints them.
var Algos = []Algo{MD5, SHA1, SHA256, SPKI}

var (
	// ErrUnknownAlgo is returned for an algorithm name tlspin does not know.
	ErrUnknownAlgo = errors.New("pin: unknown algorithm")
	// ErrMalformed is returned for a pin that cannot be parsed.
	ErrMalformed = errors.New("pin: malformed pin")
	// ErrFormat is returned when a format cannot express an algorithm.
	ErrFormat = errors.New("pin: format does not apply")
)

// ParseAlgo parses "md5", "sha1", "sha256" or "spki" (any case; "sha-256"
// and "sha-1" too).
func ParseAlgo(s string) (Algo, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "md5":
		return MD5, nil
	case "sha1", "sha-1":
		return SHA1, nil
	case "sha256", "sha-256":
		return SHA256, nil
	case "spki", "spki-sha256":
		return SPKI, nil
	}
	return "", fmt.Errorf("%w %q (want md5, sha1, sha256 or spki)", ErrUnknownAlgo, s)
}

// Size returns the digest length in bytes.
func (a Algo) Size() int {
	switch a {
	case MD5:
		return md5.Size
	case SHA1:
		return sha1.Size
	case SHA256, SPKI:
		return sha256.Size
	}
	return 0
}

// Weak reports whether the algorithm is collision-broken.
func (a Algo) Weak() bool { return a == MD5 || a == SHA1 }

// Sum returns the digest of a DER certificate under algo.
func Sum(algo Algo, certDER []byte) ([]byte, error) {
	switch algo {
	case MD5:
		s := md5.Sum(certDER)
		return s[:], nil
	case SHA1:
		s := sha1.Sum(certDER)
		return s[:], nil
	case SHA256:
		s := sha256.Sum256(certDER)
		return s[:], nil
	case SPKI:
		spki, err := spkiOf(certDER)
		if err != nil {
			return nil, fmt.Errorf("pin: spki: %w", err)
		}
		return SumSPKI(spki), nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownAlgo, string(algo))
}

// SumSPKI returns the spki pin digest of a DER SubjectPublicKeyInfo (a
// public key without its certificate).
func SumSPKI(spkiDER []byte) []byte {
	s := sha256.Sum256(spkiDER)
	return s[:]
}

// Pin is one expected digest.
type Pin struct {
	Algo   Algo
	Digest []byte
	// Format is how the pin was written (Parse sets it), so that messages
	// echo a pin the way the user gave it; empty means DefaultFormat.
	Format Format
}

// Equal compares the digests in constant time.
func (p Pin) Equal(digest []byte) bool {
	return len(p.Digest) == len(digest) && subtle.ConstantTimeCompare(p.Digest, digest) == 1
}

// String prints the pin in the format it was written in, or else in its
// algorithm's DefaultFormat.
func (p Pin) String() string {
	if p.Format != "" {
		if s, err := Print(p.Algo, p.Digest, p.Format); err == nil {
			return s
		}
	}
	s, _ := Print(p.Algo, p.Digest, DefaultFormat(p.Algo))
	return s
}

// Parse parses one pin of algorithm algo in any accepted format.
func Parse(algo Algo, s string) (Pin, error) {
	pins, err := ParseList(algo, s)
	if err != nil {
		return Pin{}, err
	}
	if len(pins) != 1 {
		return Pin{}, fmt.Errorf("%w %q: want one pin, got %d", ErrMalformed, s, len(pins))
	}
	return pins[0], nil
}

// ParseList parses s as one pin of algorithm algo, or several joined by
// ";" as curl writes them. For spki a whole HPKP header value may be pasted
// (`pin-sha256="..."; pin-sha256="..."; max-age=5184000`): its directives
// other than pin-sha256 are ignored.
func ParseList(algo Algo, s string) ([]Pin, error) {
	if algo.Size() == 0 {
		return nil, fmt.Errorf("%w %q", ErrUnknownAlgo, string(algo))
	}
	orig := s
	s = strings.TrimSpace(s)
	if algo == SPKI {
		s = trimHeaderName(s)
	}
	if s == "" {
		return nil, fmt.Errorf("%w: empty %s pin", ErrMalformed, algo)
	}
	var out []Pin
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" || (algo == SPKI && hpkpDirective(part)) {
			continue
		}
		d, err := parseOne(algo, part)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrMalformed, orig, err)
		}
		out = append(out, Pin{Algo: algo, Digest: d, Format: Detect(part)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w %q: no pin", ErrMalformed, orig)
	}
	return out, nil
}

// trimHeaderName strips a pasted "Public-Key-Pins:" header name.
func trimHeaderName(s string) string {
	for _, h := range []string{"public-key-pins:", "public-key-pins-report-only:"} {
		if hasPrefixFold(s, h) {
			return strings.TrimSpace(s[len(h):])
		}
	}
	return s
}

// hpkpDirective reports whether part is an HPKP directive that is not a pin.
func hpkpDirective(part string) bool {
	name, _, _ := strings.Cut(part, "=")
	switch asciiLower(strings.TrimSpace(name)) {
	case "max-age", "includesubdomains", "report-uri":
		return true
	}
	return false
}

// asciiLower lowercases ASCII letters only, so that byte offsets in the
// result are offsets in s (strings.ToLower changes lengths: "İ", "K").
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && asciiLower(s[:len(prefix)]) == prefix
}

// parseOne strips a format's wrapper and decodes the value.
func parseOne(algo Algo, s string) ([]byte, error) {
	lower := asciiLower(s)
	// openssl: "md5 Fingerprint=AA:BB" / "SHA256 Fingerprint=...".
	if i := strings.Index(lower, " fingerprint="); i > 0 {
		a, err := ParseAlgo(s[:i])
		if err != nil {
			return nil, err
		}
		if algo == SPKI || a != algo {
			return nil, fmt.Errorf("an openssl %s fingerprint is not a %s pin", a, algo)
		}
		return decodeValue(algo, s[i+len(" fingerprint="):])
	}
	switch {
	case strings.HasPrefix(lower, "pin-sha256="):
		if algo != SPKI {
			return nil, fmt.Errorf("an HPKP pin-sha256 is an spki pin, not %s", algo)
		}
		v := strings.Trim(s[len("pin-sha256="):], `"' `)
		return decodeBase64(algo, v)
	case strings.HasPrefix(lower, "sha256//"):
		if algo != SPKI {
			return nil, fmt.Errorf("a curl sha256// pin is an spki pin, not %s", algo)
		}
		d, err := decodeBase64(algo, s[len("sha256//"):])
		if err != nil {
			// OkHttp's sha256/ followed by base64 that starts with "/"
			// looks like curl's prefix; the lengths tell them apart.
			if d2, err2 := decodeBase64(algo, s[len("sha256/"):]); err2 == nil {
				return d2, nil
			}
		}
		return d, err
	case strings.HasPrefix(lower, "sha256/"):
		if algo != SPKI {
			return nil, fmt.Errorf("an OkHttp sha256/ pin is an spki pin, not %s", algo)
		}
		return decodeBase64(algo, s[len("sha256/"):])
	case strings.HasPrefix(lower, "sha1/"):
		return nil, errors.New("an OkHttp sha1/ pin is an SPKI SHA-1 pin, which tlspin does not use; pin the sha256/ form")
	}
	// "ALGO:VALUE" (ghostunnel's sha256:BASE64 for spki, and tlspin's own
	// allowlist form). A hex value with colons never starts with a name.
	if i := strings.IndexByte(s, ':'); i > 0 {
		if a, err := ParseAlgo(s[:i]); err == nil {
			if a != algo && !(algo == SPKI && a == SHA256) {
				return nil, fmt.Errorf("a %s pin where a %s pin is expected", a, algo)
			}
			return decodeValue(algo, s[i+1:])
		}
	}
	return decodeValue(algo, s)
}

// DecodeValue decodes a bare digest of algorithm algo given as hex (any
// case, colons allowed) or base64 (standard or URL alphabet).
func DecodeValue(algo Algo, s string) ([]byte, error) { return decodeValue(algo, s) }

func decodeValue(algo Algo, s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	h := stripSeparators(s)
	if len(h) == 2*algo.Size() {
		if d, err := hex.DecodeString(h); err == nil {
			return d, nil
		}
	}
	if strings.ContainsAny(s, ": ") {
		return nil, fmt.Errorf("want %d hex digits for %s, got %q%s", 2*algo.Size(), algo, s, otherDigest(algo, h))
	}
	// Hex digits only, of the wrong number: hex cut short or pasted
	// twice, not base64. Cut to the length of unpadded base64 of the
	// digest (22 digits of md5, 43 of sha256) it used to decode as
	// base64 to a digest no peer has. Base64 of a digest made of hex
	// digits alone is astronomically rare, and is never padded base64.
	if h != "" && strings.Trim(h, "0123456789abcdefABCDEF") == "" {
		return nil, fmt.Errorf("want %d hex digits for %s, got %d%s", 2*algo.Size(), algo, len(h), otherDigest(algo, h))
	}
	d, err := decodeBase64(algo, s)
	if err != nil {
		return nil, fmt.Errorf("want %d hex digits or base64 of %d bytes for %s%s", 2*algo.Size(), algo.Size(), algo, otherDigest(algo, h))
	}
	return d, nil
}

// otherDigest says which digest hex h has the length of, if it is not
// algo's: a SHA-256 given to md5pin, say, taken from the wrong line of
// tlspin fingerprint.
func otherDigest(algo Algo, h string) string {
	if _, err := hex.DecodeString(h); err != nil {
		return ""
	}
	for _, o := range []struct {
		a   Algo
		use string
	}{{MD5, "md5pin"}, {SHA1, "an allowlist's sha1: lines"}, {SHA256, "sha256pin"}} {
		if o.a != algo && len(h) == 2*o.a.Size() {
			return fmt.Sprintf(" (that is the length of a %s digest, which is for %s)", o.a, o.use)
		}
	}
	return ""
}

// stripSeparators removes the colons and spaces hex is often grouped with.
func stripSeparators(s string) string {
	if !strings.ContainsAny(s, ": ") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != ':' && s[i] != ' ' {
			b = append(b, s[i])
		}
	}
	return string(b)
}

func decodeBase64(algo Algo, s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if d, err := enc.DecodeString(s); err == nil {
			if len(d) != algo.Size() {
				return nil, fmt.Errorf("base64 %q decodes to %d bytes, want %d for %s", s, len(d), algo.Size(), algo)
			}
			return d, nil
		}
	}
	return nil, fmt.Errorf("%q is not base64", s)
}
