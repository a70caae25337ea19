package compare

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/files"
)

// Scenario names, in the order compare runs them.
const (
	Same                = "same"
	Renewed             = "renewed"
	Rekeyed             = "rekeyed"
	OtherCA             = "other-ca"
	Lookalike           = "lookalike"
	Expired             = "expired"
	IntermediateRotated = "intermediate-rotated"
	ForgedChain         = "forged-chain"
	StolenCertNoKey     = "stolen-cert-no-key"
)

// Scenario is one certificate a server might present instead of the
// reference.
type Scenario struct {
	Name string
	// What says in a few words what changed.
	What string
	// Cert is what the server presents.
	Cert tls.Certificate
}

// Scenarios derives the standard scenarios from r. A scenario that cannot
// be made from r (intermediate-rotated without the CA's key) is left out
// and explained in skipped.
func Scenarios(r *Reference) (out []Scenario, skipped []string, err error) {
	leaf := r.leaf
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	if life <= 0 {
		life = 90 * 24 * time.Hour
	}
	now := time.Now()
	nb := now.Add(-time.Minute)
	// reissue gives the reference's subject and names to key, signed by
	// parent (self-signed when parent is nil), followed by chain.
	reissue := func(key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer, chain [][]byte, nb, na time.Time) (tls.Certificate, error) {
		if parent == nil {
			parentKey = key
		}
		c, err := issueLike(leaf, key.Public(), parent, parentKey, nb, na)
		if err != nil {
			return tls.Certificate{}, err
		}
		return tls.Certificate{Certificate: append([][]byte{c.Raw}, chain...), PrivateKey: key, Leaf: c}, nil
	}
	newKey := func() (crypto.Signer, error) {
		k, err := certs.GenerateKey(r.KeyType, 0)
		if err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
		return k, nil
	}
	add := func(name, what string, c tls.Certificate, err error) error {
		if err != nil {
			return fmt.Errorf("compare: scenario %q: %w", name, err)
		}
		out = append(out, Scenario{Name: name, What: what, Cert: c})
		return nil
	}

	if err := add(Same, "the reference certificate itself", r.Leaf, nil); err != nil {
		return nil, nil, err
	}
	c, err := reissue(r.key, r.issuer, r.issuerKey, r.chain, nb, nb.Add(life))
	if err := add(Renewed, "same key and names, new serial and dates, same issuer", c, err); err != nil {
		return nil, nil, err
	}
	k, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	c, err = reissue(k, r.issuer, r.issuerKey, r.chain, nb, nb.Add(life))
	if err := add(Rekeyed, "new key, same names, same issuer", c, err); err != nil {
		return nil, nil, err
	}
	otherKey, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	other, err := issueCA("tlspin compare other CA", otherKey.Public(), nil, otherKey)
	if err != nil {
		return nil, nil, err
	}
	c, err = reissue(r.key, other, otherKey, nil, nb, nb.Add(life))
	if err := add(OtherCA, "same key and names, issued by a CA nobody configured", c, err); err != nil {
		return nil, nil, err
	}
	k, err = newKey()
	if err != nil {
		return nil, nil, err
	}
	c, err = reissue(k, nil, nil, nil, nb, nb.Add(life))
	if err := add(Lookalike, "an attacker's self-signed certificate: same subject and names, another key", c, err); err != nil {
		return nil, nil, err
	}
	// The public certificates of the real chain cost an attacker nothing:
	// they ride along after a leaf of its own that claims the real issuer
	// (its name and key id) but is signed with the attacker's key, since
	// the issuer's is not the attacker's to use. Only the signature tells
	// it from the real chain; a verifier that trusts a name, or a pin that
	// merely appears in the chain, passes it. For a self-signed reference
	// the attacker's leaf is self-signed, carrying the real leaf.
	k, err = newKey()
	if err != nil {
		return nil, nil, err
	}
	var claimed *x509.Certificate
	if r.issuer != nil {
		claimed = &x509.Certificate{RawSubject: r.issuer.RawSubject, Subject: r.issuer.Subject, SubjectKeyId: r.issuer.SubjectKeyId}
	}
	c, err = reissue(k, claimed, k, r.forgedTail(), nb, nb.Add(life))
	if err := add(ForgedChain, "an attacker's leaf claiming the real issuer, signed with its own key, carrying the real intermediate and CA (or the real leaf)", c, err); err != nil {
		return nil, nil, err
	}
	// The reference's chain is public too: an attacker can send it byte
	// for byte, but cannot sign the handshake with its key. Every pin of
	// it matches, so the verifier allows it; what rejects it is the
	// handshake, where the peer must sign with the key of the certificate
	// it sent (TLS 1.3 CertificateVerify). That proof is why a pin means
	// anything at all. crypto/tls does not check that a tls.Certificate's
	// PrivateKey belongs to its leaf (tls.X509KeyPair does, and so would
	// certs.LoadKeyPair), so a certificate put together here presents the
	// real chain and signs with the attacker's key, of the same type so
	// that the signature scheme still suits the leaf: the client's check
	// of that signature, not a mismatch of algorithms, is what fails.
	k, err = newKey()
	if err != nil {
		return nil, nil, err
	}
	stolen := tls.Certificate{Certificate: slices.Clone(r.Leaf.Certificate), PrivateKey: k, Leaf: r.leaf}
	if err := add(StolenCertNoKey, "the real certificate and chain, byte for byte, sent by an attacker without its private key (it signs the handshake with a key of its own)", stolen, nil); err != nil {
		return nil, nil, err
	}
	c, err = reissue(r.key, r.issuer, r.issuerKey, r.chain, now.Add(-life-48*time.Hour), now.Add(-24*time.Hour))
	if err := add(Expired, "same key and names and issuer, expired yesterday", c, err); err != nil {
		return nil, nil, err
	}
	if r.caKey == nil {
		// Only a self-signed reference comes without its CA's key
		// (LoadReference): no CA issued it, so --ref-ca cannot help.
		skipped = append(skipped, IntermediateRotated+": the reference is self-signed, so it has no CA to rotate an intermediate under (give a --ref issued by a CA, with --ref-ca)")
		return out, skipped, nil
	}
	ik, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	var inter *x509.Certificate
	if r.issuer != nil && r.issuer != r.CA {
		inter, err = issueLike(r.issuer, ik.Public(), r.CA, r.caKey, nb, nb.AddDate(5, 0, 0))
	} else {
		inter, err = issueCA(refInterName, ik.Public(), r.CA, r.caKey)
	}
	if err != nil {
		return nil, nil, err
	}
	// The server sends what it sent before with the new intermediate in
	// the old one's place (or, for a leaf the CA issued directly, before
	// the rest): a CA it sent, pinned with chain=ca, is still there.
	tail := [][]byte{inter.Raw}
	for _, der := range r.chain {
		if r.issuer != nil && r.issuer != r.CA && bytes.Equal(der, r.issuer.Raw) {
			continue
		}
		tail = append(tail, der)
	}
	c, err = reissue(r.key, inter, ik, tail, nb, nb.Add(life))
	if err := add(IntermediateRotated, "same leaf key and names, issued by a new intermediate (new key) under the same root", c, err); err != nil {
		return nil, nil, err
	}
	return out, skipped, nil
}

// forgedTail is what an attacker appends to its own leaf: the reference's
// intermediates and CA, or, for a self-signed reference, the reference
// leaf itself.
func (r *Reference) forgedTail() [][]byte {
	tail := slices.Clone(r.chain)
	if r.CA != nil && !slices.ContainsFunc(tail, func(der []byte) bool { return bytes.Equal(der, r.CA.Raw) }) {
		tail = append(tail, r.CA.Raw)
	}
	if len(tail) == 0 || r.issuer == nil {
		tail = append([][]byte{r.leaf.Raw}, tail...)
	}
	return tail
}

// CertFile loads a scenario from a PEM file holding a certificate and its
// key; it is named after the file.
func CertFile(path string) (Scenario, error) {
	data, err := files.ReadGiven(path, certs.MaxFileSize, false)
	if err != nil {
		return Scenario{}, fmt.Errorf("compare: --cert %q: %w", path, err)
	}
	// No flag gives the key of a --cert (compare's --key is a key type).
	tc, err := certs.ParseKeyPairFlag(data, nil, path, "", "")
	if err != nil {
		return Scenario{}, fmt.Errorf("compare: bad --cert %q (it needs the certificate and its private key in one file): %w", path, err)
	}
	return Scenario{Name: filepath.Base(path), What: "given with --cert", Cert: tc}, nil
}
