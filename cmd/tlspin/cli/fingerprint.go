package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/client"
	"github.com/tlspin/tlspin/core/pin"
)

type fingerprintFlags struct {
	algo, format, serverName string
	chain, json              bool
	timeout                  time.Duration
}

func (a *app) fingerprintCommand() *cobra.Command {
	f := &fingerprintFlags{}
	c := &cobra.Command{
		Use:   "fingerprint FILE|HOST:PORT",
		Short: "print the fingerprint (pin) of a certificate file or a live server",
		Long: `Print the fingerprint of a certificate, as a pin for a verifier.

FILE may hold PEM certificates (with or without a private key, like the
recipe's cert.pem) or DER. Given HOST:PORT, tlspin connects and prints the
server's certificates without trusting them.

Algorithms: md5, sha1, sha256 (digest of the certificate) and spki (SHA-256
of the public key: the pin that survives renewal with the same key).
Formats: hex (lowercase, the recipe's), colon (AA:BB, openssl's), base64,
curl (sha256//..., for curl --pinnedpubkey; spki), okhttp (sha256/...; spki),
hpkp (pin-sha256="..."; spki), openssl (exactly what openssl x509
-fingerprint prints; md5, sha1, sha256).`,
		Example: `  tlspin fingerprint --algo md5 cert.pem
  tlspin fingerprint --algo spki --format curl example.com:443
  tlspin fingerprint --chain --json 127.0.0.1:8081`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return a.runFingerprint(cmd, f, args[0]) },
	}
	fs := c.Flags()
	fs.StringVar(&f.algo, "algo", "sha256", "md5, sha1, sha256 or spki")
	fs.StringVar(&f.format, "format", "", "hex, colon, base64, curl, okhttp, hpkp or openssl (default hex, base64 for spki)")
	fs.BoolVar(&f.chain, "chain", false, "print every certificate of the file or the server's chain, not only the first")
	fs.BoolVar(&f.json, "json", false, "print JSON")
	fs.StringVar(&f.serverName, "server-name", "", "with HOST:PORT: the TLS server name to ask for (default HOST)")
	fs.DurationVar(&f.timeout, "timeout", client.DefaultTimeout, "with HOST:PORT: dial and handshake timeout")
	return c
}

// fingerprintJSON is the --json output.
type fingerprintJSON struct {
	Source       string            `json:"source"`
	Algo         string            `json:"algo"`
	Format       string            `json:"format"`
	Certificates []certFingerprint `json:"certificates"`
}

type certFingerprint struct {
	Index       int    `json:"index"`
	Subject     string `json:"subject"`
	Issuer      string `json:"issuer"`
	NotAfter    string `json:"not_after"`
	Fingerprint string `json:"fingerprint"`
}

func (a *app) runFingerprint(cmd *cobra.Command, f *fingerprintFlags, target string) error {
	algo, err := pin.ParseAlgo(f.algo)
	if err != nil {
		return usageError{err}
	}
	format := pin.DefaultFormat(algo)
	if f.format != "" {
		if format, err = pin.ParseFormat(f.format); err != nil {
			return usageError{err}
		}
	}
	if _, err := pin.Print(algo, make([]byte, algo.Size()), format); err != nil {
		return usageError{err}
	}
	chain, err := a.loadTarget(cmd.Context(), cmd, target, f)
	if err != nil {
		return err
	}
	if !f.chain {
		chain = chain[:1]
	}
	doc := fingerprintJSON{Source: target, Algo: string(algo), Format: string(format)}
	for i, c := range chain {
		d, err := pin.Sum(algo, c.Raw)
		if err != nil {
			return err
		}
		s, err := pin.Print(algo, d, format)
		if err != nil {
			return usageError{err}
		}
		doc.Certificates = append(doc.Certificates, certFingerprint{
			Index: i, Subject: c.Subject.String(), Issuer: c.Issuer.String(),
			NotAfter: c.NotAfter.UTC().Format(time.RFC3339), Fingerprint: s,
		})
	}
	out := cmd.OutOrStdout()
	if f.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	for _, c := range doc.Certificates {
		if f.chain {
			fmt.Fprintf(out, "%d %s %s\n", c.Index, c.Fingerprint, c.Subject)
		} else {
			fmt.Fprintln(out, c.Fingerprint)
		}
	}
	return nil
}

// loadTarget reads a certificate file, or fetches a server's chain
// without trusting it when target is HOST:PORT and no such file exists.
func (a *app) loadTarget(ctx context.Context, cmd *cobra.Command, target string, f *fingerprintFlags) ([]*x509.Certificate, error) {
	if _, err := os.Stat(target); err == nil || !looksLikeHostPort(target) {
		return certs.LoadCertificates(target)
	}
	return fetchChain(ctx, cmd.ErrOrStderr(), target, f)
}

// fetchChain returns the chain a server sends. The chain is kept as soon
// as it arrives, so that a server that then ends the handshake (a TLS 1.2
// server requiring a client certificate does) still has its certificates
// printed, with a note on stderr.
func fetchChain(ctx context.Context, stderr io.Writer, target string, f *fingerprintFlags) ([]*x509.Certificate, error) {
	var got [][]byte
	cfg := &tls.Config{
		ServerName: client.ServerName(target, f.serverName),
		// Only reading the certificates: nothing is sent, nothing trusted.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			got = raw
			return nil
		},
	}
	conn, err := client.Dial(ctx, target, cfg, f.timeout)
	if err == nil {
		conn.Close()
	} else if len(got) == 0 {
		return nil, err
	} else {
		fmt.Fprintf(stderr, "tlspin: note: the TLS handshake failed after the server sent its certificate (%v); printing the certificate it sent\n", err)
	}
	if len(got) == 0 {
		return nil, errors.New("fingerprint: server sent no certificate")
	}
	chain := make([]*x509.Certificate, len(got))
	for i, der := range got {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("fingerprint: certificate #%d the server sent: %w", i, err)
		}
		chain[i] = c
	}
	return chain, nil
}

func looksLikeHostPort(s string) bool {
	h, p, err := net.SplitHostPort(s)
	if err != nil || h == "" {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}
