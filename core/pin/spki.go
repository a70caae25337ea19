package pin

import (
	"errors"
	"fmt"
)

// DER tags of the fields between a certificate and its public key.
const (
	tagInteger  = 0x02
	tagSequence = 0x30
	tagVersion  = 0xa0 // [0] EXPLICIT, constructed
)

// errNotCertificate is wrapped by spkiOf's errors.
var errNotCertificate = errors.New("not a DER certificate")

// spkiOf returns the DER SubjectPublicKeyInfo of a DER certificate, read
// from its structure alone (RFC 5280 4.1):
//
//	Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
//	TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber INTEGER,
//	    signature SEQUENCE, issuer SEQUENCE, validity SEQUENCE,
//	    subject SEQUENCE, subjectPublicKeyInfo SEQUENCE, ... }
//
// Why not x509.ParseCertificate: it decodes the whole certificate (names,
// extensions, the key itself), which took 7.5 µs of a spkipin Verify's
// 8.8 on a warm 2-core VM, and 17-19 µs in a plugin that had been idle,
// to hash some 90 bytes. A pin judges those bytes only; crypto/tls has
// parsed a peer's certificate with crypto/x509 before any verifier sees
// it, and tlspin's own commands parse the files they read.
//
// It is as strict as crypto/x509 about what it reads: DER lengths only
// (definite, minimal), every field where RFC 5280 puts it, and nothing
// after the certificate. On every certificate crypto/x509 parses, it
// returns RawSubjectPublicKeyInfo (FuzzSPKI checks that).
func spkiOf(der []byte) ([]byte, error) {
	cert, rest, err := element(der, tagSequence)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %w", errNotCertificate, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the certificate", errNotCertificate, len(rest))
	}
	tbs, _, err := element(contents(cert), tagSequence)
	if err != nil {
		return nil, fmt.Errorf("%w: tbsCertificate: %w", errNotCertificate, err)
	}
	fields := contents(tbs)
	if len(fields) > 0 && fields[0] == tagVersion {
		if _, fields, err = element(fields, tagVersion); err != nil {
			return nil, fmt.Errorf("%w: version: %w", errNotCertificate, err)
		}
	}
	for _, f := range []struct {
		name string
		tag  byte
	}{{"serialNumber", tagInteger}, {"signature", tagSequence}, {"issuer", tagSequence}, {"validity", tagSequence}, {"subject", tagSequence}} {
		if _, fields, err = element(fields, f.tag); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errNotCertificate, f.name, err)
		}
	}
	spki, _, err := element(fields, tagSequence)
	if err != nil {
		return nil, fmt.Errorf("%w: subjectPublicKeyInfo: %w", errNotCertificate, err)
	}
	return spki, nil
}

// element reads one DER element of the given tag at the start of b and
// returns it whole (tag, length and contents) and what follows it.
func element(b []byte, tag byte) (elem, rest []byte, err error) {
	if len(b) < 2 {
		return nil, nil, errors.New("truncated")
	}
	if b[0] != tag {
		return nil, nil, fmt.Errorf("tag 0x%02x where 0x%02x belongs", b[0], tag)
	}
	n, head := uint64(b[1]), 2
	if n&0x80 != 0 {
		// Long form: the low bits count the length's bytes. DER wants
		// the fewest: no leading zero, and no long form under 128.
		k := int(n & 0x7f)
		if k == 0 || k > 4 || len(b) < 2+k {
			return nil, nil, errors.New("bad length")
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | uint64(c)
		}
		if b[2] == 0 || n < 0x80 {
			return nil, nil, errors.New("length not in DER's shortest form")
		}
		head += k
	}
	if n > uint64(len(b)-head) {
		return nil, nil, errors.New("truncated")
	}
	end := head + int(n)
	return b[:end], b[end:], nil
}

// contents returns what an element that element returned contains.
func contents(elem []byte) []byte {
	if elem[1]&0x80 == 0 {
		return elem[2:]
	}
	return elem[2+int(elem[1]&0x7f):]
}
