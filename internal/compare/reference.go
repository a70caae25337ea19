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
	"github.com/tlspin/tlspin/internal/files"
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
	// ErrBadRefCA means the CA given for a reference (--ref-ca) cannot be
	// used: it did not issue the reference (checked by signature), is not a
	// CA, or its file does not hold exactly one certificate and its key.
	ErrBadRefCA = errors.New("compare: bad --ref-ca")
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
// in keyFile). caFile, if not empty, holds the certificate
// and key of the CA that issued it, which issues its renewals; a CA that
// did not sign it, or a file that does not hold one CA certificate and
// its key, is an error wrapping ErrBadRefCA. Without caFile a self-signed
// reference renews itself; one issued by a CA is an error wrapping
// ErrNoIssuerKey.
func LoadReference(certFile, keyFile, caFile string) (*Reference, error) {
	certPEM, err := files.ReadGiven(certFile, certs.MaxFileSize, false)
	if err != nil {
		return nil, fmt.Errorf("compare: --ref %q: %w", certFile, err)
	}
	var keyPEM []byte
	if keyFile != "" {
		if keyPEM, err = files.ReadGiven(keyFile, certs.MaxFileSize, false); err != nil {
			return nil, fmt.Errorf("compare: --ref-key %q: %w", keyFile, err)
		}
	}
	// compare's --key is a key type: the key of --ref is in its file or
	// in --ref-key.
	tc, err := certs.ParseKeyPairFlag(certPEM, keyPEM, certFile, keyFile, "--ref-key")
	if err != nil {
		return nil, fmt.Errorf("compare: bad --ref %q: %w", certFile, err)
	}
	key, ok := tc.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("compare: bad --ref %q: key type %T cannot sign", certFile, tc.PrivateKey)
	}
	leaf := tc.Leaf
	kt := keyTypeOf(key)
	chain := tc.Certificate[1:]
	if caFile != "" {
		ca, caKey, err := loadRefCA(caFile, certFile, leaf)
		if err != nil {
			return nil, err
		}
		return newReference(leaf, key, chain, ca, caKey, ca, caKey, kt), nil
	}
	selfSigned := bytes.Equal(leaf.RawIssuer, leaf.RawSubject) &&
		leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil
	if !selfSigned {
		return nil, fmt.Errorf("%w: %q is issued by %q; give that CA's certificate and key with --ref-ca, or use a self-signed reference", ErrNoIssuerKey, certFile, leaf.Issuer.String())
	}
	return newReference(leaf, key, nil, leaf, nil, nil, nil, kt), nil
}

// loadRefCA reads caFile, given as the CA of the reference leaf read
// from certFile: one CA certificate and its private key, that issued leaf.
// Issued means signed: leaf's issuer is the CA's subject and leaf's
// signature verifies under the CA's public key, since another CA may bear
// the same name. Anything else wraps ErrBadRefCA, naming both files: the
// scenarios made from a CA that did not issue the reference would compare
// nothing meaningful.
func loadRefCA(caFile, certFile string, leaf *x509.Certificate) (*x509.Certificate, crypto.Signer, error) {
	data, err := files.ReadGiven(caFile, certs.MaxFileSize, false)
	if err != nil {
		return nil, nil, fmt.Errorf("compare: --ref-ca %q: %w", caFile, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %q, given as the CA of --ref %q: %w", ErrBadRefCA, caFile, certFile, fmt.Errorf(format, a...))
	}
	const want = "it needs the certificate and private key of the CA that issued --ref, in one file"
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, bad("the file is empty; %s", want)
	}
	cs, err := certs.ParseCertificates(data)
	if err != nil {
		return nil, nil, bad("no certificate in it (%w); %s", err, want)
	}
	if len(cs) > 1 {
		return nil, nil, bad("it holds %d certificates, a chain; give the CA that issued --ref (%q) alone, with its key: compare takes it as the trust anchor and would ignore the certificates after it", len(cs), leaf.Issuer.String())
	}
	ca := cs[0]
	caKey, err := certs.ParseKey(data)
	if err != nil {
		return nil, nil, bad("no private key of %q in it (%w); %s", ca.Subject.String(), err, want)
	}
	if pub, ok := caKey.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(ca.PublicKey) {
		return nil, nil, bad("%w: the key in it is not the key of %q", certs.ErrKeyMismatch, ca.Subject.String())
	}
	if !ca.IsCA {
		return nil, nil, bad("%q is not a CA certificate (no CA basic constraint); give the CA that issued --ref (%q)", ca.Subject.String(), leaf.Issuer.String())
	}
	if bytes.Equal(leaf.RawIssuer, leaf.RawSubject) && leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil {
		return nil, nil, bad("--ref is self-signed: no CA issued it, and it needs no --ref-ca")
	}
	if !bytes.Equal(leaf.RawIssuer, ca.RawSubject) {
		return nil, nil, bad("it did not issue --ref: it is %q, and --ref is issued by %q; give that CA's certificate and key", ca.Subject.String(), leaf.Issuer.String())
	}
	if err := ca.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		return nil, nil, bad("it did not issue --ref: it bears the name of --ref's issuer, %q, but --ref's signature does not verify under its public key (another CA of the same name, or one re-keyed since): %w", ca.Subject.String(), err)
	}
	return ca, caKey, nil
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
