package cli

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/internal/keypair"
)

type certFlags struct {
	out, keyOut, typ, cn string
	caCert, caKey        string
	bits, days           int
	sans                 []string
	force, ca, json      bool
}

func (a *app) certCommand() *cobra.Command {
	f := &certFlags{}
	c := &cobra.Command{
		Use:   "cert",
		Short: "make a private key and a certificate: self-signed, a CA, or issued by a CA",
		Long: `Make a private key and a certificate. By default both go into one file
(--out), key first, like the recipe's cert.pem; with --key-out the key goes
to its own file. Files holding a key are written with mode 0600. An
existing file is never overwritten without --force, a symbolic link is
never written through, and either every file is written or none is.

By default the certificate is self-signed. --ca makes a CA certificate
instead (it can sign others). --ca-cert FILE issues the certificate from
that CA (its key in the same file, or in --ca-key): --out then holds the
new certificate followed by the CA's, so that the peer sends the whole
chain, and the ca verifier (ca-file=CA) and the chain modes of the pin
verifiers (chain=ca) can be tried without openssl. Its validity stays
within the CA's: it starts no earlier and ends no later (stderr says so).

Prints the new certificate's pins on stdout (md5 and sha256 of the
certificate in hex, spki in base64, as fingerprint prints them); what was
written goes to stderr. --json prints both as one document.`,
		Example: `  tlspin cert --out cert.pem
  tlspin cert --out crt.pem --key-out key.pem --type ecdsa --san example.com --san 10.0.0.1 --days 90
  tlspin cert --ca --cn "My test CA" --out ca.pem
  tlspin cert --ca-cert ca.pem --out leaf.pem --san localhost`,
		Args: noArgs("name the file with --out FILE"),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runCert(cmd, f) },
	}
	fs := c.Flags()
	fs.StringVar(&f.out, "out", "cert.pem", "certificate file (and key, unless --key-out)")
	fs.StringVar(&f.keyOut, "key-out", "", "write the private key to this file instead of --out")
	fs.StringVar(&f.typ, "type", "rsa", "key type: rsa, ecdsa or ed25519")
	fs.IntVar(&f.bits, "bits", 0, "RSA modulus bits (default 2048) or ECDSA curve size 256, 384, 521 (default 256); not for ed25519")
	fs.IntVar(&f.days, "days", 365, "days of validity")
	fs.StringVar(&f.cn, "cn", "", `subject common name (default "localhost", or "tlspin CA" with --ca)`)
	fs.StringArrayVar(&f.sans, "san", nil, "subject alternative name: DNS name or IP address (repeatable; default localhost, 127.0.0.1, ::1; none with --ca)")
	fs.BoolVar(&f.force, "force", false, "overwrite existing files")
	fs.BoolVar(&f.ca, "ca", false, "make a CA certificate, which can issue others (see --ca-cert)")
	fs.StringVar(&f.caCert, "ca-cert", "", "issue the certificate from this CA certificate (with its key, unless --ca-key) instead of self-signing")
	fs.StringVar(&f.caKey, "ca-key", "", "private key of --ca-cert, if not in the same file")
	fs.BoolVar(&f.json, "json", false, "print a JSON document with the files written and the pins")
	return c
}

// certDoc is `cert --json`.
type certDoc struct {
	Certificate string            `json:"certificate"`
	Key         string            `json:"key"`
	Subject     string            `json:"subject"`
	Issuer      string            `json:"issuer"`
	NotAfter    string            `json:"not_after"`
	CA          bool              `json:"ca"`
	Pins        map[string]string `json:"pins"`
}

func (a *app) runCert(cmd *cobra.Command, f *certFlags) error {
	if f.days <= 0 {
		return usagef("--days %d: must be positive", f.days)
	}
	if most := certs.MaxDays(time.Now()); f.days > most {
		return usagef("--days %d: the certificate would end after 9999-12-31 23:59:59 UTC, the last date a certificate can hold; the largest accepted today is %d", f.days, most)
	}
	// "-" is standard input or output elsewhere (fingerprint -): here it
	// would be a file named "-". Stdout holds the pins, and a private key
	// printed to a terminal stays in its scrollback.
	if f.out == "" {
		return usagef("--out \"\": name the file to write, as in --out cert.pem")
	}
	if f.out == "-" {
		return usagef("--out -: cert writes its key and certificate to files, never to stdout; name a file, as in --out cert.pem")
	}
	if f.keyOut == "-" {
		return usagef("--key-out -: cert writes a private key to a file, never to stdout; name a file, as in --key-out key.pem")
	}
	if f.keyOut != "" && filepath.Clean(f.keyOut) == filepath.Clean(f.out) {
		return usagef("--key-out %q is the same file as --out; omit --key-out to write both into one file", f.keyOut)
	}
	if f.bits != 0 && certs.KeyType(f.typ) == certs.Ed25519 {
		return usagef("--bits %d: ed25519 keys have one size; omit --bits", f.bits)
	}
	if f.caKey != "" && f.caCert == "" {
		return usagef("--ca-key needs --ca-cert")
	}
	for _, san := range f.sans {
		if net.ParseIP(san) == nil && !isHostName(san) {
			return usagef("--san %q: not a DNS name (*.example.com allowed) or an IP address; no client could ever match it", san)
		}
	}
	tpl := certs.Template{Type: certs.KeyType(f.typ), Bits: f.bits, CommonName: f.cn, SANs: f.sans, Days: f.days, IsCA: f.ca}
	if !cmd.Flags().Changed("cn") {
		tpl.CommonName = "localhost"
		if f.ca {
			tpl.CommonName = "tlspin CA"
		}
	}
	if len(tpl.SANs) == 0 && !f.ca {
		tpl.SANs = []string{"localhost", "127.0.0.1", "::1"}
	}
	// Refuse before generating anything (WriteFiles checks again): a
	// target that cannot be written is how cert was called, a usage error.
	for _, p := range []string{f.out, f.keyOut} {
		if p == "" {
			continue
		}
		if err := certs.CheckTarget(p, f.force); errors.Is(err, certs.ErrExists) {
			return usagef("%w (use --force to overwrite)", err)
		} else if err != nil {
			return usageError{err}
		}
	}
	var issuer *x509.Certificate
	var issuerKey crypto.Signer
	if f.caCert != "" {
		var err error
		if issuer, issuerKey, err = loadIssuer(f.caCert, f.caKey); err != nil {
			return err
		}
		keypair.WarnIfReadable(a.log, f.caCert, f.caKey)
	}
	if issuer != nil {
		tpl.NotAfter = issuer.NotAfter // never outlive the CA
		if start := time.Now().Add(-time.Minute); issuer.NotBefore.After(start) {
			// Nor start before it: a CA not yet valid (its clock ahead
			// of ours) makes a chain that is valid only from its start.
			tpl.NotBefore = issuer.NotBefore
		}
	}
	if (tpl.Type == certs.RSA || tpl.Type == "") && tpl.Bits >= 4096 {
		fmt.Fprintf(cmd.ErrOrStderr(), "tlspin: generating a %d-bit RSA key; this can take a minute (Ctrl-C stops it, writing nothing)\n", tpl.Bits)
	}
	key, err := generateKey(cmd.Context(), tpl.Type, tpl.Bits)
	if err != nil {
		return err
	}
	var crt *x509.Certificate
	if issuer == nil {
		crt, err = certs.Issue(tpl, key.Public(), nil, key)
	} else {
		crt, err = certs.Issue(tpl, key.Public(), issuer, issuerKey)
	}
	if err != nil {
		return err
	}
	keyPEM, err := certs.EncodeKey(key)
	if err != nil {
		return err
	}
	certPEM := certs.EncodeCert(crt)
	if issuer != nil {
		certPEM = append(certPEM, certs.EncodeCert(issuer)...)
	}
	if err := cmd.Context().Err(); err != nil {
		// Stopped while the certificate was made: write nothing.
		return err
	}
	files := []certs.File{{Path: f.out, Data: append(keyPEM, certPEM...), Mode: 0o600}}
	keyFile := f.out
	if f.keyOut != "" {
		files = []certs.File{{Path: f.keyOut, Data: keyPEM, Mode: 0o600}, {Path: f.out, Data: certPEM, Mode: 0o644}}
		keyFile = f.keyOut
	}
	if err := certs.WriteFiles(files, f.force); err != nil {
		if errors.Is(err, certs.ErrExists) {
			return fmt.Errorf("%w (use --force to overwrite)", err)
		}
		return err
	}
	errw := cmd.ErrOrStderr()
	inCert := "certificate"
	both := "private key and certificate"
	if issuer != nil {
		inCert = "certificate, then its CA's"
		both = "private key, certificate, then its CA's"
	}
	if f.keyOut == "" {
		fmt.Fprintf(errw, "tlspin: wrote %s (%s; mode 0600)\n", f.out, both)
	} else {
		fmt.Fprintf(errw, "tlspin: wrote %s (private key, mode 0600) and %s (%s)\n", f.keyOut, f.out, inCert)
	}
	if issuer != nil && crt.NotBefore.After(time.Now()) {
		fmt.Fprintf(errw, "tlspin: note: valid only from %s, when its CA becomes valid\n", crt.NotBefore.UTC().Format(time.DateTime+" MST"))
	}
	if issuer != nil && crt.NotAfter.Before(crt.NotBefore.AddDate(0, 0, f.days-1)) {
		fmt.Fprintf(errw, "tlspin: note: valid only until %s, when its CA expires\n", crt.NotAfter.UTC().Format(time.DateOnly))
	}
	doc := certDoc{
		Certificate: f.out, Key: keyFile, Subject: crt.Subject.String(), Issuer: crt.Issuer.String(),
		NotAfter: crt.NotAfter.UTC().Format(time.RFC3339), CA: crt.IsCA, Pins: map[string]string{},
	}
	algos := []pin.Algo{pin.MD5, pin.SHA256, pin.SPKI}
	for _, al := range algos {
		d, err := pin.Sum(al, crt.Raw)
		if err != nil {
			return err
		}
		doc.Pins[string(al)] = pin.Pin{Algo: al, Digest: d}.String()
	}
	out := cmd.OutOrStdout()
	if f.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	for _, al := range algos {
		fmt.Fprintf(out, "%-6s %s\n", al, doc.Pins[string(al)])
	}
	return nil
}

// generateKey makes a key of type t and size bits, unless ctx ends first:
// crypto/rsa cannot be stopped, and an 8192-bit key takes a minute, so it
// is made on its own goroutine, abandoned (with its key) when ctx ends.
// A bad type or size is a usage error.
func generateKey(ctx context.Context, t certs.KeyType, bits int) (crypto.Signer, error) {
	type result struct {
		key crypto.Signer
		err error
	}
	done := make(chan result, 1)
	go func() {
		k, err := certs.GenerateKey(t, bits)
		done <- result{k, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, usageError{r.err}
		}
		return r.key, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// loadIssuer loads a CA certificate and its key, and checks that it may
// issue certificates.
func loadIssuer(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	// cert has no --key: the CA's key is in its file or in --ca-key.
	tc, err := certs.LoadKeyPairFlag(certFile, keyFile, "--ca-key")
	if err != nil {
		return nil, nil, badInput(fmt.Errorf("--ca-cert: %w", err))
	}
	ca := tc.Leaf
	if !ca.IsCA || (ca.KeyUsage != 0 && ca.KeyUsage&x509.KeyUsageCertSign == 0) {
		return nil, nil, usagef("--ca-cert %q: %q is not a CA certificate (make one with tlspin cert --ca)", certFile, ca.Subject.String())
	}
	if !ca.NotAfter.After(time.Now()) {
		// A certificate never outlives its CA: it would end before it began.
		return nil, nil, badInput(fmt.Errorf("--ca-cert %q: %q expired on %s; a certificate it issued would never be valid", certFile, ca.Subject.String(), ca.NotAfter.UTC().Format(time.DateTime+" MST")))
	}
	signer, ok := tc.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, badInput(fmt.Errorf("--ca-cert %q: the key cannot sign", certFile))
	}
	return ca, signer, nil
}

// isHostName reports whether s is a DNS name a certificate can be valid
// for: dot-separated labels of letters, digits, hyphens and underscores,
// not starting or ending with a hyphen, the first of which may be "*"
// before another.
func isHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for i, l := range labels {
		if i == 0 && l == "*" && len(labels) > 1 {
			continue
		}
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}
