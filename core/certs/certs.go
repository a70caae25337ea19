// Package certs makes self-signed certificates and loads certificates and
// keys from PEM (certificate only, key only, or the recipe's key and
// certificate in one file) or DER.
package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"iter"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tlspin/tlspin/internal/files"
)

var (
	// ErrNoCertificate means a file holds no certificate in PEM or DER.
	ErrNoCertificate = errors.New("certs: no certificate found")
	// ErrNoKey means a file holds no private key.
	ErrNoKey = errors.New("certs: no private key found")
	// ErrKeyMismatch means a key does not belong to a certificate.
	ErrKeyMismatch = errors.New("certs: private key does not match the certificate")
	// ErrEncryptedKey means a private key is encrypted with a passphrase,
	// which tlspin does not read.
	ErrEncryptedKey = errors.New("certs: the private key is encrypted")
	// ErrUnsupportedKey means a key is of a type crypto/tls cannot use.
	ErrUnsupportedKey = errors.New("certs: unsupported key type")
	// ErrNoPublicKey means data holds no certificate, certificate request,
	// public key or private key.
	ErrNoPublicKey = errors.New("certs: no certificate, certificate request, public key or private key found")
	// ErrExists means a file would be overwritten without force.
	ErrExists = errors.New("certs: file exists")
	// ErrSymlink means a file to write is a symbolic link, which is never
	// followed.
	ErrSymlink = errors.New("certs: refusing to write through a symbolic link")
	// ErrUnsafeDir means a file to write is in a directory, or behind a
	// symbolic link, that another user could write: they could swap or
	// remove a private key there.
	ErrUnsafeDir = errors.New("certs: refusing to write where another user could replace it")
	// ErrSameFile means two files to write are one file.
	ErrSameFile = errors.New("certs: two outputs are the same file")
	// ErrNotRegular means a file to write exists and is not a regular file.
	ErrNotRegular = errors.New("certs: not a regular file")
	// ErrValidity means a certificate's validity cannot be what a Template
	// asks: a negative number of days, an end after the last date a
	// certificate can hold (see MaxDays), or a NotAfter that ends it
	// before it begins.
	ErrValidity = errors.New("certs: bad validity")
)

// KeyType names a key algorithm.
type KeyType string

const (
	RSA     KeyType = "rsa"
	ECDSA   KeyType = "ecdsa"
	Ed25519 KeyType = "ed25519"
)

// Template describes a self-signed certificate to make.
type Template struct {
	Type KeyType
	// Bits is the RSA modulus size, or the ECDSA curve size (256, 384, 521).
	Bits       int
	CommonName string
	// SANs are DNS names or IP addresses.
	SANs      []string
	NotBefore time.Time
	// Days is the validity from NotBefore, in days of 24 hours; 0 means
	// 365. It may not be negative nor above MaxDays(NotBefore).
	Days int
	// NotAfter, if set, ends the validity earlier than Days would (a
	// certificate should not outlive its issuer). It must be after
	// NotBefore.
	NotAfter time.Time
	// IsCA makes a certificate that can sign others.
	IsCA bool
}

// GenerateKey makes a private key of the given type and size.
func GenerateKey(t KeyType, bits int) (crypto.Signer, error) {
	switch t {
	case RSA, "":
		if bits == 0 {
			bits = 2048
		}
		if bits < 1024 || bits > 8192 {
			return nil, fmt.Errorf("certs: RSA key size %d out of range (1024..8192)", bits)
		}
		return rsa.GenerateKey(rand.Reader, bits)
	case ECDSA:
		var c elliptic.Curve
		switch bits {
		case 0, 256:
			c = elliptic.P256()
		case 384:
			c = elliptic.P384()
		case 521:
			c = elliptic.P521()
		default:
			return nil, fmt.Errorf("certs: ECDSA curve size %d not supported (256, 384, 521)", bits)
		}
		return ecdsa.GenerateKey(c, rand.Reader)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("certs: unknown key type %q (want rsa, ecdsa or ed25519)", string(t))
}

// SelfSigned makes a key and a self-signed certificate for it.
func SelfSigned(t Template) (crypto.Signer, *x509.Certificate, error) {
	key, err := GenerateKey(t.Type, t.Bits)
	if err != nil {
		return nil, nil, err
	}
	c, err := Issue(t, key.Public(), nil, key)
	if err != nil {
		return nil, nil, err
	}
	return key, c, nil
}

// Issue signs a certificate for pub. With a nil parent the certificate is
// self-signed by signer.
func Issue(t Template, pub crypto.PublicKey, parent *x509.Certificate, signer crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certs: serial: %w", err)
	}
	nb := t.NotBefore
	if nb.IsZero() {
		nb = time.Now().Add(-time.Minute)
	}
	days := t.Days
	switch {
	case days < 0:
		return nil, fmt.Errorf("%w: %d days: must be positive, or 0 for 365", ErrValidity, days)
	case days == 0:
		days = 365
	case days > MaxDays(nb):
		return nil, fmt.Errorf("%w: %d days from %s end after %s, the last date a certificate can hold; at most %d",
			ErrValidity, days, nb.UTC().Format(time.DateOnly), lastNotAfter.Format(time.DateTime+" MST"), MaxDays(nb))
	}
	// Calendar arithmetic, in UTC where every day has 24 hours: a
	// time.Duration overflows past 292 years, and a certificate made with
	// one expired before it began.
	na := nb.UTC().AddDate(0, 0, days)
	if !t.NotAfter.IsZero() && t.NotAfter.Before(na) {
		na = t.NotAfter
	}
	if !na.After(nb) {
		// As from an issuer that has expired: never valid.
		return nil, fmt.Errorf("%w: NotAfter %s is not after NotBefore %s", ErrValidity, na.UTC().Format(time.RFC3339), nb.UTC().Format(time.RFC3339))
	}
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: t.CommonName},
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  t.IsCA,
	}
	if _, ok := pub.(*rsa.PublicKey); ok {
		tpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if t.IsCA {
		tpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	for _, s := range t.SANs {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if ip := net.ParseIP(s); ip != nil {
			tpl.IPAddresses = append(tpl.IPAddresses, ip)
		} else {
			tpl.DNSNames = append(tpl.DNSNames, s)
		}
	}
	if parent == nil {
		parent = tpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("certs: sign: %w", err)
	}
	return x509.ParseCertificate(der)
}

// lastNotAfter is the last time a certificate can hold: X.509 writes a
// date after 2049 as a GeneralizedTime, whose year has four digits.
var lastNotAfter = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// MaxDays returns the largest Template.Days of a certificate valid from
// notBefore: its validity ends by 9999-12-31 23:59:59 UTC, the last date
// a certificate can hold. It is 0 for a notBefore less than a day before
// that.
func MaxDays(notBefore time.Time) int {
	// In seconds: a time.Duration holds only 292 years.
	s := lastNotAfter.Unix() - notBefore.Unix()
	if notBefore.Nanosecond() > 0 {
		s-- // the end falls a fraction of a second later
	}
	if s < 0 {
		return 0
	}
	return int(s / (24 * 60 * 60))
}

// EncodeKey returns the PKCS#8 PEM of key.
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("certs: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodeCert returns the PEM of a certificate.
func EncodeCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// File is one file for WriteFiles to write.
type File struct {
	Path string
	Data []byte
	// Mode is the file's permission bits, applied whatever the umask
	// (0600 for a file that holds a private key).
	Mode os.FileMode
}

// WriteFiles writes every file or none, so that a key is never left
// without its certificate. Every target is checked before anything is
// written: it must not be a symbolic link (never followed, even with
// force), must be a regular file if it exists, must not exist unless force
// is set, and no two targets may be the same file (through a symlinked
// directory or a bind mount, say). Each file is written to a temporary
// file in its directory with its final mode, then renamed over the
// target; if a later step fails, the files already put in place are
// removed, and those they replaced (force) put back.
func WriteFiles(files []File, force bool) error {
	targets := make([]string, len(files))
	dirs := make([]os.FileInfo, len(files))
	for i, f := range files {
		t, err := checkTarget(f.Path, force)
		if err != nil {
			return err
		}
		// The directory itself, not its name: a bind mount shows one
		// directory at two places, which no link tells.
		if dirs[i], err = os.Stat(filepath.Dir(t)); err != nil {
			return fmt.Errorf("certs: directory of %q: %w", f.Path, err)
		}
		for j, other := range targets[:i] {
			if filepath.Base(other) == filepath.Base(t) && os.SameFile(dirs[j], dirs[i]) {
				return fmt.Errorf("%w: %q and %q", ErrSameFile, files[j].Path, f.Path)
			}
		}
		targets[i] = t
	}
	temps := make([]string, 0, len(files))
	defer func() {
		for _, t := range temps {
			os.Remove(t)
		}
	}()
	for i, f := range files {
		tmp, err := writeTemp(filepath.Dir(targets[i]), f)
		if err != nil {
			return err
		}
		temps = append(temps, tmp)
	}
	// placed are the targets written so far, each with the name its old
	// file is kept under ("" if there was none), to undo them.
	type placement struct{ target, old string }
	var placed []placement
	undo := func(err error) error {
		for _, p := range slices.Backward(placed) {
			if p.old == "" {
				os.Remove(p.target)
			} else if rerr := putBack(p.old, p.target); rerr != nil {
				err = fmt.Errorf("%w; the file %q held before is kept as %q: %w", err, p.target, p.old, rerr)
			}
		}
		return err
	}
	for i, f := range files {
		var old string
		var err error
		if force {
			// A later file that fails (another user's in a sticky
			// directory, a full disk) must not cost this one's old
			// file: the old key would be lost, its certificate left
			// without it. The last file has none after it.
			if i < len(files)-1 {
				old, err = keepOld(targets[i])
			}
			if err == nil {
				// rename replaces a name, never the file a symlink points to.
				err = os.Rename(temps[i], targets[i])
			}
			if err != nil && old != "" {
				if rerr := putBack(old, targets[i]); rerr != nil {
					err = fmt.Errorf("%w; the file held before is kept as %q: %w", err, old, rerr)
				}
			}
		} else {
			// link fails if the target appeared since it was checked.
			err = os.Link(temps[i], targets[i])
		}
		if err != nil {
			if errors.Is(err, os.ErrExist) {
				err = fmt.Errorf("%w: %q", ErrExists, f.Path)
			} else {
				err = fmt.Errorf("certs: writing %q: %w", f.Path, err)
			}
			return undo(err)
		}
		placed = append(placed, placement{targets[i], old})
	}
	for _, p := range placed {
		if p.old != "" {
			os.Remove(p.old)
		}
	}
	syncDirs(targets)
	return nil
}

// keepOld gives the file at target another name in its directory, which
// a rename can put back in its place, and returns it; "" if there is no
// file at target.
func keepOld(target string) (string, error) {
	old := filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+".old-"+rand.Text())
	// A second name keeps the file at target meanwhile, for a server that
	// reloads it. link(2) does not follow a link at target (checked not
	// to be one).
	err := os.Link(target, old)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		// Linux refuses to link another user's file (a key once made
		// with sudo), which the rename over it replaces all the same:
		// move it aside instead.
		err = os.Rename(target, old)
	}
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("keeping the old file to put back on failure: %w", err)
	}
	return old, nil
}

// putBack puts the file keepOld kept as old back at target.
func putBack(old, target string) error {
	if err := os.Rename(old, target); err != nil {
		return err
	}
	// Where target still is the file (rename(2) of one of its names over
	// another does nothing), old is left to remove.
	os.Remove(old)
	return nil
}

// checkTarget returns path with its directory resolved, after checking
// that it may be written.
func checkTarget(path string, force bool) (string, error) {
	// Resolved by the checked walk: a directory (or a link on the way)
	// another user could write would let them swap or remove the key.
	// The walk of path checks the directory the file goes in too (that of
	// its directory stops short of it); a link at path itself is refused
	// below.
	dir, err := files.Resolve(filepath.Dir(path))
	if err == nil {
		_, err = files.Resolve(path)
	}
	if errors.Is(err, files.ErrUntrusted) {
		return "", fmt.Errorf("%w: %w", ErrUnsafeDir, err)
	}
	if err == nil {
		var st os.FileInfo
		if st, err = os.Stat(dir); err == nil && !st.IsDir() {
			err = syscall.ENOTDIR
		}
	}
	if err != nil {
		return "", fmt.Errorf("certs: directory of %q: %w", path, err)
	}
	base := filepath.Base(path)
	if base == "." || base == ".." || base == string(filepath.Separator) {
		return "", fmt.Errorf("certs: %q is not a file name", path)
	}
	target := filepath.Join(dir, base)
	fi, err := os.Lstat(target)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return target, nil
	case err != nil:
		return "", fmt.Errorf("certs: %w", err)
	case fi.Mode()&os.ModeSymlink != 0:
		return "", fmt.Errorf("%w: %q", ErrSymlink, path)
	case fi.IsDir():
		return "", fmt.Errorf("%w: %q is a directory; give a file name in it", ErrNotRegular, path)
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%w: %q is a device, socket or pipe", ErrNotRegular, path)
	case !force:
		return "", fmt.Errorf("%w: %q", ErrExists, path)
	}
	return target, nil
}

// CheckTarget says why WriteFiles would refuse to write path, if it
// would: it is a symbolic link, not a regular file, or exists and force
// is not set.
func CheckTarget(path string, force bool) error {
	_, err := checkTarget(path, force)
	return err
}

// writeTemp writes f to a new temporary file in dir and returns its name.
func writeTemp(dir string, f File) (string, error) {
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("certs: writing %q: %w", f.Path, err)
	}
	name := tmp.Name()
	err = tmp.Chmod(f.Mode)
	if err == nil {
		_, err = tmp.Write(f.Data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("certs: writing %q: %w", f.Path, err)
	}
	return name, nil
}

// syncDirs makes the renames durable.
func syncDirs(targets []string) {
	done := map[string]bool{}
	for _, t := range targets {
		d := filepath.Dir(t)
		if done[d] {
			continue
		}
		done[d] = true
		if f, err := os.Open(d); err == nil {
			f.Sync()
			f.Close()
		}
	}
}

// pemBlocks yields the PEM blocks of data in order. A byte order mark at
// the start (which some editors add) is skipped: pem.Decode takes a block
// only where "-----BEGIN" starts a line, so the mark hid the first block,
// a cert.pem's key went missing and a chain's second certificate read as
// its leaf.
func pemBlocks(data []byte) iter.Seq[*pem.Block] {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	return func(yield func(*pem.Block) bool) {
		for rest := data; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil || !yield(b) {
				return
			}
		}
	}
}

// ParseCertificates returns every certificate in data, which may be PEM
// (certificates mixed with keys, as in the recipe's cert.pem) or DER.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	sawPEM := false
	for b := range pemBlocks(data) {
		sawPEM = true
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certs: bad certificate in PEM: %w", err)
		}
		out = append(out, c)
	}
	if sawPEM {
		if len(out) == 0 {
			return nil, ErrNoCertificate
		}
		return out, nil
	}
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("%w: malformed PEM", ErrNoCertificate)
	}
	cs, err := x509.ParseCertificates(data)
	if err != nil || len(cs) == 0 {
		return nil, fmt.Errorf("%w: neither PEM nor DER", ErrNoCertificate)
	}
	return cs, nil
}

// PublicKey is a public key read from something other than a certificate.
type PublicKey struct {
	// Kind is "certificate request", "public key" or "private key".
	Kind string
	// SPKI is the DER SubjectPublicKeyInfo.
	SPKI []byte
	// Subject is a certificate request's subject.
	Subject string
}

// ParsePublicKeys returns the public keys of PEM or DER data that holds
// certificate requests (CSRs), public keys (PKIX or PKCS#1) or private
// keys: what a backup pin is computed from before its certificate exists.
func ParsePublicKeys(data []byte) ([]PublicKey, error) {
	var out []PublicKey
	sawPEM := false
	for b := range pemBlocks(data) {
		sawPEM = true
		var (
			k   PublicKey
			err error
		)
		switch b.Type {
		case "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST":
			k, err = csrKey(b.Bytes)
		case "PUBLIC KEY":
			k, err = pkixKey(b.Bytes)
		case "RSA PUBLIC KEY":
			var pub *rsa.PublicKey
			if pub, err = x509.ParsePKCS1PublicKey(b.Bytes); err == nil {
				k, err = marshalPublic("public key", pub)
			}
		default:
			if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
				continue
			}
			var key crypto.Signer
			if key, err = ParseKey(pem.EncodeToMemory(b)); err == nil {
				k, err = marshalPublic("private key", key.Public())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("certs: bad %s: %w", b.Type, err)
		}
		out = append(out, k)
	}
	if sawPEM || bytes.Contains(data, []byte("-----BEGIN")) {
		if len(out) == 0 {
			return nil, ErrNoPublicKey
		}
		return out, nil
	}
	if k, err := pkixKey(data); err == nil {
		return []PublicKey{k}, nil
	}
	if k, err := csrKey(data); err == nil {
		return []PublicKey{k}, nil
	}
	// A private key in DER is PKCS#8, or, as openssl pkey -outform DER
	// writes RSA and EC keys, PKCS#1 or SEC 1.
	if s := derPrivateKey(data); s != nil {
		k, err := marshalPublic("private key", s.Public())
		return []PublicKey{k}, err
	}
	return nil, fmt.Errorf("%w: neither PEM nor DER", ErrNoPublicKey)
}

func derPrivateKey(der []byte) crypto.Signer {
	if key, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if s, ok := key.(crypto.Signer); ok {
			return s
		}
		return nil
	}
	if key, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return key
	}
	if key, err := x509.ParseECPrivateKey(der); err == nil {
		return key
	}
	return nil
}

func csrKey(der []byte) (PublicKey, error) {
	r, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return PublicKey{}, err
	}
	return PublicKey{Kind: "certificate request", SPKI: r.RawSubjectPublicKeyInfo, Subject: r.Subject.String()}, nil
}

func pkixKey(der []byte) (PublicKey, error) {
	if _, err := x509.ParsePKIXPublicKey(der); err != nil {
		return PublicKey{}, err
	}
	return PublicKey{Kind: "public key", SPKI: der}, nil
}

func marshalPublic(kind string, pub crypto.PublicKey) (PublicKey, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return PublicKey{}, err
	}
	return PublicKey{Kind: kind, SPKI: der}, nil
}

// MaxFileSize bounds what the loaders read of a file: a certificate
// bundle of every public CA takes a few hundred kilobytes.
const MaxFileSize = 16 << 20

// LoadCertificates reads a PEM or DER file and returns its certificates.
// Like the other loaders, it reads a pipe with a writer (<(...)) but never
// waits for a writer to open a named pipe (files.ReadGiven).
func LoadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := files.ReadGiven(path, MaxFileSize, false)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return ParseCertificatesOf(path, data)
}

// ParseCertificatesOf is ParseCertificates of data read from the file
// path, which its error names.
func ParseCertificatesOf(path string, data []byte) ([]*x509.Certificate, error) {
	cs, err := ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %q)", err, path)
	}
	return cs, nil
}

// LoadKeyPair loads a certificate chain and its private key. keyFile may be
// empty when certFile holds both, as the recipe's cert.pem does. A
// certFile without a key, and no keyFile, is an error saying to give the
// key with --key (the flag of serve, proxy and send); LoadKeyPairFlag
// names another.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	return LoadKeyPairFlag(certFile, keyFile, "--key")
}

// LoadKeyPairFlag is LoadKeyPair whose error for a certFile without a key
// names keyFlag as the flag that gives the key file, or, with keyFlag
// empty, says only that the key goes in certFile.
func LoadKeyPairFlag(certFile, keyFile, keyFlag string) (tls.Certificate, error) {
	certPEM, err := files.ReadGiven(certFile, MaxFileSize, false)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: %w", err)
	}
	var keyPEM []byte
	if keyFile != "" {
		if keyPEM, err = files.ReadGiven(keyFile, MaxFileSize, false); err != nil {
			return tls.Certificate{}, fmt.Errorf("certs: %w", err)
		}
	}
	return ParseKeyPairFlag(certPEM, keyPEM, certFile, keyFile, keyFlag)
}

// ParseKeyPair is LoadKeyPair of the contents of certFile and keyFile,
// read by the caller; with keyFile empty, the key is in certPEM.
func ParseKeyPair(certPEM, keyPEM []byte, certFile, keyFile string) (tls.Certificate, error) {
	return ParseKeyPairFlag(certPEM, keyPEM, certFile, keyFile, "--key")
}

// ParseKeyPairFlag is ParseKeyPair whose error for a certPEM without a
// key (keyFile empty) names keyFlag as the flag that gives the key file,
// or, with keyFlag empty, says only that the key goes in certFile: a
// command whose --key means something else names its own flag.
func ParseKeyPairFlag(certPEM, keyPEM []byte, certFile, keyFile, keyFlag string) (tls.Certificate, error) {
	keyName := certFile
	if keyFile == "" {
		keyPEM = certPEM
	} else {
		keyName = keyFile
	}
	chain, err := ParseCertificates(certPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w (file %q)", err, certFile)
	}
	if chain[0].PublicKey == nil {
		name, oid := spkiAlgorithm(chain[0])
		return tls.Certificate{}, fmt.Errorf("%w (file %q)", unsupported("public key in the certificate", name, oid), certFile)
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		switch {
		case keyFile == "" && keyFlag != "":
			return tls.Certificate{}, fmt.Errorf("%w in %q: give the key with %s, or put it in the same file as the certificate", err, keyName, keyFlag)
		case keyFile == "":
			return tls.Certificate{}, fmt.Errorf("%w in %q: put it in the same file as the certificate", err, keyName)
		}
		return tls.Certificate{}, fmt.Errorf("%w (file %q)", err, keyName)
	}
	if !publicKeysEqual(chain[0].PublicKey, key.Public()) {
		return tls.Certificate{}, fmt.Errorf("%w: key %q, certificate %q", ErrKeyMismatch, keyName, certFile)
	}
	tc := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc, nil
}

// ParseKey returns the first private key in PEM data (PKCS#8, PKCS#1 or
// SEC 1). An encrypted key is ErrEncryptedKey; a key of a type crypto/tls
// cannot sign with (RSA-PSS, DSA, X25519, ...) is ErrUnsupportedKey, naming
// the type.
func ParseKey(data []byte) (crypto.Signer, error) {
	for b := range pemBlocks(data) {
		if strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, fmt.Errorf("%w (%s with PEM encryption %s); write it decrypted first: openssl pkey -in KEY -out KEY.plain", ErrEncryptedKey, b.Type, b.Headers["DEK-Info"])
		}
		var k any
		var err error
		switch b.Type {
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("%w (PKCS#8 ENCRYPTED PRIVATE KEY); write it decrypted first: openssl pkey -in KEY -out KEY.plain", ErrEncryptedKey)
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				if name, oid, ok := pkcs8Algorithm(b.Bytes); ok && name != "" {
					return nil, unsupported("private key", name, oid)
				}
			}
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "DSA PRIVATE KEY":
			return nil, unsupported("private key", "DSA", nil)
		case "OPENSSH PRIVATE KEY":
			return nil, fmt.Errorf("%w: an OpenSSH private key; tlspin reads PEM keys (PKCS#8, PKCS#1, SEC 1)", ErrUnsupportedKey)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("certs: bad %s: %w", b.Type, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			if name, oid, _ := pkcs8Algorithm(b.Bytes); name != "" {
				return nil, unsupported("private key", name, oid)
			}
			return nil, unsupported("private key", fmt.Sprintf("%T", k), nil)
		}
		return s, nil
	}
	return nil, ErrNoKey
}

// keyNames names the key algorithms people meet that crypto/tls cannot use.
var keyNames = map[string]string{
	"1.2.840.113549.1.1.10": "RSA-PSS",
	"1.2.840.10040.4.1":     "DSA",
	"1.2.840.10046.2.1":     "DH",
	"1.3.101.110":           "X25519",
	"1.3.101.111":           "X448",
	"1.3.101.113":           "Ed448",
}

// pkcs8Algorithm returns the name and OID of a PKCS#8 key's algorithm.
func pkcs8Algorithm(der []byte) (string, asn1.ObjectIdentifier, bool) {
	var p struct {
		Version    int
		Algo       pkix.AlgorithmIdentifier
		PrivateKey []byte
	}
	if _, err := asn1.Unmarshal(der, &p); err != nil {
		return "", nil, false
	}
	return keyNames[p.Algo.Algorithm.String()], p.Algo.Algorithm, true
}

// spkiAlgorithm returns the name and OID of a certificate's public key
// algorithm.
func spkiAlgorithm(c *x509.Certificate) (string, asn1.ObjectIdentifier) {
	var spki struct {
		Algo      pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		return "", nil
	}
	name := keyNames[spki.Algo.Algorithm.String()]
	if name == "" {
		name = "unknown"
	}
	return name, spki.Algo.Algorithm
}

func unsupported(what, name string, oid asn1.ObjectIdentifier) error {
	if oid != nil {
		name += " (OID " + oid.String() + ")"
	}
	hint := ""
	if strings.HasPrefix(name, "RSA-PSS") {
		hint = "; make a plain RSA key instead (openssl genpkey -algorithm RSA), which TLS 1.3 signs with RSA-PSS anyway"
	}
	return fmt.Errorf("%w: %s %s: tlspin supports RSA, ECDSA (P-256, P-384, P-521) and Ed25519 keys%s", ErrUnsupportedKey, name, what, hint)
}
func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}
