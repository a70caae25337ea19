package pinverifier

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/tlspin/tlspin/core/verify"
)

// ErrBrokenChain is wrapped by Find's error when a pin matched a
// certificate that the peer only sent along: its leaf does not chain to it
// by signature.
var ErrBrokenChain = errors.New("chain does not lead from the leaf to the pinned certificate")

// Found is the certificate of a peer chain that satisfied a pin.
type Found struct {
	// Index is its position in the peer chain; 0 is the leaf.
	Index int
	// Until is when the verified path from the leaf to it stops being
	// valid (the earliest NotAfter on the path); zero for the leaf itself,
	// whose dates a pin on the leaf does not judge.
	Until time.Time
}

// Find returns the first certificate of req.PeerChain allowed by mode c
// for which match reports true and which the peer has proved to be its
// own: the leaf (crypto/tls proves the peer holds the leaf's key), or an
// issuer the leaf chains to by signature.
//
// Any certificate after the leaf is only something the peer sent; CA and
// intermediate certificates are public, so an attacker can append them to
// a leaf of its own. A pin on such a certificate is therefore satisfied
// only when x509 path building, with the matched certificate as the only
// root and the peer's other certificates as intermediates, leads from the
// leaf to it: signatures, validity periods, CA basic constraints and key
// usage are checked, and the leaf's extended key usage must allow its side
// (server authentication for a server, client authentication for a
// client). The matched certificate must itself be a CA.
//
// Only the first maxMatches certificates after the leaf that match are
// tried: a chain with more, none of which the leaf chains to, is refused
// as broken (see maxMatches).
//
// Find returns (nil, nil) when no certificate matched, and an error
// wrapping ErrBrokenChain when some matched but none is proved. An error
// from match is returned as is.
func Find(c Chain, req *verify.Request, now time.Time, match func(i int, der []byte) (bool, error)) (*Found, error) {
	chain := req.PeerChain
	if len(chain) == 0 {
		return nil, nil
	}
	first := 0
	switch c {
	case ChainAny:
	case ChainCA:
		first = 1
	default:
		ok, err := match(0, chain[0])
		if err != nil || !ok {
			return nil, err
		}
		return &Found{}, nil
	}
	var (
		broken error
		tried  int
		certs  []*x509.Certificate // the chain, parsed at the first match after the leaf
		errs   []error             // why certs[i] is nil
	)
	for i := first; i < len(chain); i++ {
		ok, err := match(i, chain[i])
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if i == 0 {
			return &Found{}, nil
		}
		if tried == maxMatches {
			return nil, fmt.Errorf("%w; the peer sent more than %d certificates that match a pin, the others are not tried", broken, maxMatches)
		}
		tried++
		if certs == nil {
			certs, errs = parseChain(chain)
		}
		until, err := chainsTo(req, certs, errs, i, now)
		if err == nil {
			return &Found{Index: i, Until: until}, nil
		}
		if broken == nil {
			broken = err
		}
	}
	return nil, broken
}

// maxMatches is how many certificates after the leaf that match a pin
// Find tries to chain the leaf to. The peer chooses how many match (the
// pinned CA's certificate sent over and over, or, under a key pin,
// certificates it made for the pinned key, whose own signatures a pin does
// not see), and it is asked before it has proved it holds any key: each
// try is a path build of up to 100 signature checks, and hundreds of
// matches in the 256 KiB crypto/tls accepts cost seconds of CPU per
// handshake, past the host's verify timeout. A real chain holds one
// certificate a pin matches, two with a cross-signed CA or pins on both
// an intermediate and its root.
const maxMatches = 4

// parseChain parses every certificate of chain once, for all the matches
// Find tries: certs[i] is nil where errs[i] says why it does not parse.
func parseChain(chain [][]byte) (certs []*x509.Certificate, errs []error) {
	certs = make([]*x509.Certificate, len(chain))
	errs = make([]error, len(chain))
	for i, der := range chain {
		certs[i], errs[i] = x509.ParseCertificate(der)
	}
	return certs, errs
}

// chainsTo checks that the leaf of req chains by signature to certificate
// i of the peer chain, used as the only root, and returns the earliest
// NotAfter on the path. certs and errs are the chain parsed (parseChain).
func chainsTo(req *verify.Request, certs []*x509.Certificate, errs []error, i int, now time.Time) (time.Time, error) {
	brokenf := func(format string, a ...any) error {
		return fmt.Errorf("%w #%d%s: %s", ErrBrokenChain, i, Subject(req.PeerChain[i]), fmt.Sprintf(format, a...))
	}
	leaf, anchor := certs[0], certs[i]
	if leaf == nil {
		return time.Time{}, brokenf("cannot parse the leaf: %v", errs[0])
	}
	if anchor == nil {
		return time.Time{}, brokenf("cannot parse it: %v", errs[i])
	}
	// crypto/x509 does not check that a root is a CA: a pinned
	// certificate must be one to vouch for anything but itself.
	if !anchor.BasicConstraintsValid || !anchor.IsCA {
		return time.Time{}, brokenf("it is not a CA certificate (basic constraints)")
	}
	if anchor.KeyUsage != 0 && anchor.KeyUsage&x509.KeyUsageCertSign == 0 {
		return time.Time{}, brokenf("its key usage does not allow signing certificates")
	}
	var eku x509.ExtKeyUsage
	switch req.Side {
	case verify.ClientVerifiesServer:
		eku = x509.ExtKeyUsageServerAuth
	case verify.ServerVerifiesClient:
		eku = x509.ExtKeyUsageClientAuth
	default:
		return time.Time{}, brokenf("the request says neither client nor server side (%s)", req.Side)
	}
	roots := x509.NewCertPool()
	roots.AddCert(anchor)
	inter := x509.NewCertPool()
	for j, c := range certs[1:] {
		if j+1 != i && c != nil {
			inter.AddCert(c)
		}
	}
	paths, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{eku},
	})
	if err != nil {
		return time.Time{}, brokenf("%v", err)
	}
	var until time.Time
	for _, c := range paths[0] {
		if until.IsZero() || c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	return until, nil
}
