package compare

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"

	"github.com/tlspin/tlspin/core/certs"
)

// Reference is the certificate every verifier is configured to trust, with
// what compare needs to derive the scenarios from it: the leaf's key, and
// the keys of its issuers when compare made them.
type Reference struct {
	// Leaf is what the server presents: the leaf certificate first, then
	// any intermediate, with the leaf's private key.
	Leaf tls.Certificate
	// CA is the trust anchor the ca verifier is given.
	CA *x509.Certificate
	// ServerName is the name clients ask for (the leaf's first DNS name,
	// else its first IP address).
	ServerName string
	// KeyType is the type of key new keys are made of.
	KeyType certs.KeyType

	leaf      *x509.Certificate
	key       crypto.Signer
	caKey     crypto.Signer     // nil: cannot issue from the CA
	issuer    *x509.Certificate // issuer of the leaf; nil when self-signed
	issuerKey crypto.Signer     // its key (nil with issuer nil)
	chain     [][]byte          // certificates after the leaf
}

// Reference errors.
var (
	// ErrNoIssuerKey means a given reference is issued by a CA whose key
	// compare does not have, so it cannot issue renewed certificates.
	ErrNoIssuerKey = errors.New("compare: the reference's issuer key is needed")
)

// Names of the generated reference's hierarchy.
const (
	refRootName  = "tlspin compare root CA"
	refInterName = "tlspin compare intermediate CA"
)

// NewReference generates a reference: a root CA, an intermediate CA and a
// leaf for localhost (127.0.0.1, ::1) issued by the intermediate, all with
// keys of type kt (ECDSA P-256 when empty).
func NewReference(kt certs.KeyType) (*Reference, error) {
	if kt == "" {
		kt = certs.ECDSA
	}
	rootKey, err := certs.GenerateKey(kt, 0)
	if err != nil {
		return nil, fmt.Errorf("compare: reference: %w", err)
	}
	root, err := issueCA(refRootName, rootKey.Public(), nil, rootKey)
	if err != nil {
		return nil, err
	}
	interKey, err := certs.GenerateKey(kt, 0)
	if err != nil {
		return nil, fmt.Errorf("compare: reference: %w", err)
	}
	inter, err := issueCA(refInterName, interKey.Public(), root, rootKey)
	if err != nil {
		return nil, err
	}
	key, err := certs.GenerateKey(kt, 0)
	if err != nil {
		return nil, fmt.Errorf("compare: reference: %w", err)
	}
	tpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost", Organization: []string{"tlspin compare"}},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	nb := time.Now().Add(-time.Hour)
	leaf, err := issueLike(tpl, key.Public(), inter, interKey, nb, nb.AddDate(0, 0, 90))
	if err != nil {
		return nil, err
	}
	return newReference(leaf, key, [][]byte{inter.Raw}, root, rootKey, inter, interKey, kt), nil
}

// LoadReference reads a reference from certFile (with its key, or the key
// in keyFile). caFile, if not empty, holds the CA certificate and key that
// issued it (or should issue its renewals). Without caFile a self-signed
// reference renews itself; one issued by a CA is an error wrapping
// ErrNoIssuerKey.
func LoadReference(certFile, keyFile, caFile string) (*Reference, error) {
	tc, err := certs.LoadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("compare: reference %q (it needs its private key, in the file or with --ref-key): %w", certFile, err)
	}
	key, ok := tc.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("compare: reference %q: key type %T cannot sign", certFile, tc.PrivateKey)
	}
	leaf := tc.Leaf
	kt := keyTypeOf(key)
	chain := tc.Certificate[1:]
	if caFile != "" {
		ca, err := certs.LoadKeyPair(caFile, "")
		if err != nil {
			return nil, fmt.Errorf("compare: --ref-ca %q (it needs the CA's private key): %w", caFile, err)
		}
		caKey, ok := ca.PrivateKey.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("compare: --ref-ca %q: key type %T cannot sign", caFile, ca.PrivateKey)
		}
		if !ca.Leaf.IsCA {
			return nil, fmt.Errorf("compare: --ref-ca %q: %q is not a CA certificate", caFile, ca.Leaf.Subject.String())
		}
		return newReference(leaf, key, chain, ca.Leaf, caKey, ca.Leaf, caKey, kt), nil
	}
	selfSigned := bytes.Equal(leaf.RawIssuer, leaf.RawSubject) &&
		leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil
	if !selfSigned {
		return nil, fmt.Errorf("%w: %q is issued by %q; give that CA's certificate and key with --ref-ca, or use a self-signed reference", ErrNoIssuerKey, certFile, leaf.Issuer.String())
	}
	return newReference(leaf, key, nil, leaf, nil, nil, nil, kt), nil
}

func newReference(leaf *x509.Certificate, key crypto.Signer, chain [][]byte, ca *x509.Certificate, caKey crypto.Signer, issuer *x509.Certificate, issuerKey crypto.Signer, kt certs.KeyType) *Reference {
	r := &Reference{
		Leaf:      tls.Certificate{Certificate: append([][]byte{leaf.Raw}, chain...), PrivateKey: key, Leaf: leaf},
		CA:        ca,
		KeyType:   kt,
		leaf:      leaf,
		key:       key,
		caKey:     caKey,
		issuer:    issuer,
		issuerKey: issuerKey,
		chain:     chain,
	}
	switch {
	case len(leaf.DNSNames) > 0:
		r.ServerName = leaf.DNSNames[0]
	case len(leaf.IPAddresses) > 0:
		r.ServerName = leaf.IPAddresses[0].String()
	default:
		r.ServerName = leaf.Subject.CommonName
	}
	return r
}

// SendingRoot returns a copy of r whose server sends r's root CA after
// the rest of its chain, as some servers do: a pin on the root with
// chain=ca matches only a root the peer sends. r is returned as it is
// when it sends its root already or is self-signed.
func (r *Reference) SendingRoot() *Reference {
	if r.issuer == nil || slices.ContainsFunc(r.chain, func(der []byte) bool { return bytes.Equal(der, r.CA.Raw) }) {
		return r
	}
	chain := append(slices.Clone(r.chain), r.CA.Raw)
	return newReference(r.leaf, r.key, chain, r.CA, r.caKey, r.issuer, r.issuerKey, r.KeyType)
}

// Certificate returns the parsed reference leaf.
func (r *Reference) Certificate() *x509.Certificate { return r.leaf }

func keyTypeOf(k crypto.Signer) certs.KeyType {
	switch k.Public().(type) {
	case *rsa.PublicKey:
		return certs.RSA
	case ed25519.PublicKey:
		return certs.Ed25519
	}
	return certs.ECDSA
}

// issueCA makes a CA certificate called name for pub, signed by parent
// (self-signed when parent is nil).
func issueCA(name string, pub crypto.PublicKey, parent *x509.Certificate, signer crypto.Signer) (*x509.Certificate, error) {
	tpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	nb := time.Now().Add(-time.Hour)
	return issueLike(tpl, pub, parent, signer, nb, nb.AddDate(5, 0, 0))
}

// issueLike issues a certificate with like's subject, names and usages for
// pub, valid from nb to na, signed by parent's signer (self-signed when
// parent is nil).
func issueLike(like *x509.Certificate, pub crypto.PublicKey, parent *x509.Certificate, signer crypto.Signer, nb, na time.Time) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("compare: serial: %w", err)
	}
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               like.Subject,
		NotBefore:             nb,
		NotAfter:              na,
		DNSNames:              like.DNSNames,
		IPAddresses:           like.IPAddresses,
		URIs:                  like.URIs,
		EmailAddresses:        like.EmailAddresses,
		KeyUsage:              like.KeyUsage,
		ExtKeyUsage:           like.ExtKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  like.IsCA,
	}
	if tpl.KeyUsage == 0 {
		tpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	if parent == nil {
		parent = tpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("compare: issue %q: %w", like.Subject.String(), err)
	}
	return x509.ParseCertificate(der)
}
