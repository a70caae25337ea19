package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/pin"
)

type certFlags struct {
	out, keyOut, typ, cn string
	bits, days           int
	sans                 []string
	force                bool
}

func (a *app) certCommand() *cobra.Command {
	f := &certFlags{}
	c := &cobra.Command{
		Use:   "cert",
		Short: "make a private key and a self-signed certificate",
		Long: `Make a private key and a self-signed certificate. By default both go into
one file (--out), key first, like the recipe's cert.pem; with --key-out the
key goes to its own file. Files holding a key are written with mode 0600.
An existing file is never overwritten without --force.

Prints the new certificate's pins on stdout.`,
		Example: `  tlspin cert --out cert.pem
  tlspin cert --out crt.pem --key-out key.pem --type ecdsa --san example.com --san 10.0.0.1 --days 90`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runCert(cmd, f) },
	}
	fs := c.Flags()
	fs.StringVar(&f.out, "out", "cert.pem", "certificate file (and key, unless --key-out)")
	fs.StringVar(&f.keyOut, "key-out", "", "write the private key to this file instead of --out")
	fs.StringVar(&f.typ, "type", "rsa", "key type: rsa, ecdsa or ed25519")
	fs.IntVar(&f.bits, "bits", 0, "RSA modulus bits (default 2048) or ECDSA curve size 256, 384, 521 (default 256)")
	fs.IntVar(&f.days, "days", 365, "days of validity")
	fs.StringVar(&f.cn, "cn", "localhost", "subject common name")
	fs.StringArrayVar(&f.sans, "san", nil, "subject alternative name: DNS name or IP address (repeatable; default localhost, 127.0.0.1, ::1)")
	fs.BoolVar(&f.force, "force", false, "overwrite existing files")
	return c
}

func (a *app) runCert(cmd *cobra.Command, f *certFlags) error {
	if f.days <= 0 {
		return usagef("--days %d: must be positive", f.days)
	}
	if f.keyOut != "" && filepath.Clean(f.keyOut) == filepath.Clean(f.out) {
		return usagef("--key-out %q is the same file as --out; omit --key-out to write both into one file", f.keyOut)
	}
	sans := f.sans
	if len(sans) == 0 {
		sans = []string{"localhost", "127.0.0.1", "::1"}
	}
	// Refuse before generating anything (WriteFiles checks again).
	for _, p := range []string{f.out, f.keyOut} {
		if p == "" {
			continue
		}
		if _, err := os.Lstat(p); err == nil && !f.force {
			return fmt.Errorf("%w: %q (use --force to overwrite)", certs.ErrExists, p)
		}
	}
	key, crt, err := certs.SelfSigned(certs.Template{Type: certs.KeyType(f.typ), Bits: f.bits, CommonName: f.cn, SANs: sans, Days: f.days})
	if err != nil {
		return usageError{err}
	}
	keyPEM, err := certs.EncodeKey(key)
	if err != nil {
		return err
	}
	certPEM := certs.EncodeCert(crt)
	out := cmd.OutOrStdout()
	files := []certs.File{{Path: f.out, Data: append(keyPEM, certPEM...), Mode: 0o600}}
	if f.keyOut != "" {
		files = []certs.File{{Path: f.keyOut, Data: keyPEM, Mode: 0o600}, {Path: f.out, Data: certPEM, Mode: 0o644}}
	}
	if err := certs.WriteFiles(files, f.force); err != nil {
		if errors.Is(err, certs.ErrExists) {
			return fmt.Errorf("%w (use --force to overwrite)", err)
		}
		return err
	}
	if f.keyOut == "" {
		fmt.Fprintf(out, "wrote %s (private key and certificate, mode 0600)\n", f.out)
	} else {
		fmt.Fprintf(out, "wrote %s (private key, mode 0600) and %s (certificate)\n", f.keyOut, f.out)
	}
	for _, al := range []pin.Algo{pin.MD5, pin.SHA256, pin.SPKI} {
		d, _ := pin.Sum(al, crt.Raw)
		fmt.Fprintf(out, "%-6s %s\n", al, pin.Pin{Algo: al, Digest: d})
	}
	return nil
}
