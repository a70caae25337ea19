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
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/internal/client"
	"github.com/tlspin/tlspin/internal/files"
	"github.com/tlspin/tlspin/internal/printable"
)

type fingerprintFlags struct {
	algo, format, serverName string
	chain, json              bool
	timeout                  time.Duration
}

func (a *app) fingerprintCommand() *cobra.Command {
	f := &fingerprintFlags{}
	c := &cobra.Command{
		Use:   "fingerprint FILE|-|HOST:PORT",
		Short: "print the fingerprint (pin) of a certificate, key or CSR file, or of a live server",
		Long: `Print the fingerprint of a certificate, as a pin for a verifier.

FILE (or - for standard input) may hold PEM certificates (with or without a
private key, like the recipe's cert.pem) or DER. It may also hold no
certificate but a public key, a private key or a certificate request (CSR):
then the spki pin of that key is printed, which is how a backup pin is
computed before its certificate exists. Given HOST:PORT, tlspin connects and
prints the server's certificates without trusting them.

Algorithms: md5, sha1, sha256 (digest of the certificate) and spki (SHA-256
of the public key: the pin that survives renewal with the same key). The
default is sha256 for a certificate, spki for a key or CSR, and spki with
the formats curl, okhttp and hpkp, which only spki pins have.

Formats: hex (lowercase, the recipe's; the default, except for spki),
colon (AA:BB, openssl's), base64 (the default for spki, as cert prints it),
curl (sha256//..., for curl --pinnedpubkey), okhttp (sha256/...),
hpkp (pin-sha256="..."), openssl (exactly what openssl x509 -fingerprint
prints; md5, sha1, sha256).`,
		Example: `  tlspin fingerprint --algo md5 cert.pem
  tlspin fingerprint --format curl example.com:443
  tlspin fingerprint backup-key.pem            # spki pin of a key made ahead
  openssl req -new -key next.key -subj /CN=x | tlspin fingerprint -
  tlspin fingerprint --chain --json 127.0.0.1:8081`,
		Args: argSpec{min: 1, max: 1, takes: "one FILE, - (standard input) or HOST:PORT", tooFew: "give the certificate or the server", tooMany: "one at a time"}.check,
		RunE: func(cmd *cobra.Command, args []string) error { return a.runFingerprint(cmd, f, args[0]) },
	}
	fs := c.Flags()
	fs.StringVar(&f.algo, "algo", "", "md5, sha1, sha256 or spki (default sha256; spki for a key or CSR, or with --format curl, okhttp, hpkp)")
	fs.StringVar(&f.format, "format", "", "hex, colon, base64, curl, okhttp, hpkp or openssl (default hex, base64 for spki)")
	fs.BoolVar(&f.chain, "chain", false, "print every certificate (or key) of the file or the server's chain, not only the first")
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
	Index int `json:"index"`
	// Kind is certificate, certificate request, public key or private key.
	Kind        string `json:"kind"`
	Subject     string `json:"subject,omitempty"`
	Issuer      string `json:"issuer,omitempty"`
	NotAfter    string `json:"not_after,omitempty"`
	Fingerprint string `json:"fingerprint"`
}

// pinSource is one thing to fingerprint: a certificate, or a public key
// without one (Cert nil).
type pinSource struct {
	kind string
	cert *x509.Certificate
	spki []byte
	subj string
}

// maxInput bounds what fingerprint reads of a file or standard input.
const maxInput = 1 << 20

func (a *app) runFingerprint(cmd *cobra.Command, f *fingerprintFlags, target string) error {
	var format pin.Format
	if f.format != "" {
		var err error
		if format, err = pin.ParseFormat(f.format); err != nil {
			return usageError{err}
		}
	}
	var algo pin.Algo
	if f.algo != "" {
		var err error
		if algo, err = pin.ParseAlgo(f.algo); err != nil {
			return usageError{err}
		}
	} else if format == pin.FormatCurl || format == pin.FormatOkHttp || format == pin.FormatHPKP {
		algo = pin.SPKI // the only algorithm these formats have
	}
	if algo != "" && format != "" {
		if _, err := pin.Print(algo, make([]byte, algo.Size()), format); err != nil {
			return usageError{err}
		}
	}
	if err := checkServerName(f.serverName); err != nil {
		return err
	}
	srcs, err := a.loadTarget(cmd.Context(), cmd, target, f)
	if err != nil {
		return err
	}
	if !f.chain {
		srcs = srcs[:1]
	}
	if algo == "" {
		algo = pin.SHA256
		if srcs[0].cert == nil {
			algo = pin.SPKI
		}
	}
	if format == "" {
		format = pin.DefaultFormat(algo)
	}
	if _, err := pin.Print(algo, make([]byte, algo.Size()), format); err != nil {
		return usageError{err}
	}
	doc := fingerprintJSON{Source: target, Algo: string(algo), Format: string(format)}
	for i, src := range srcs {
		var d []byte
		switch {
		case src.cert != nil:
			if d, err = pin.Sum(algo, src.cert.Raw); err != nil {
				return err
			}
		case algo == pin.SPKI:
			d = pin.SumSPKI(src.spki)
		default:
			return usagef("%s holds a %s, which has no %s fingerprint (that is a digest of a certificate): use --algo spki", target, src.kind, algo)
		}
		s, err := pin.Print(algo, d, format)
		if err != nil {
			return usageError{err}
		}
		fp := certFingerprint{Index: i, Kind: src.kind, Subject: src.subj, Fingerprint: s}
		if c := src.cert; c != nil {
			fp.Subject, fp.Issuer, fp.NotAfter = c.Subject.String(), c.Issuer.String(), c.NotAfter.UTC().Format(time.RFC3339)
		}
		doc.Certificates = append(doc.Certificates, fp)
	}
	if algo.Weak() {
		// On stderr, so that $(tlspin fingerprint --algo md5 ...) still
		// gives the pin alone, as the recipe's pipeline did.
		a.log.Warn(fmt.Sprintf("%s is collision-broken: a pin made with it is weak; prefer --algo spki (spkipin), which also survives renewal", strings.ToUpper(string(algo))))
	}
	out := cmd.OutOrStdout()
	if f.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	for _, c := range doc.Certificates {
		if f.chain {
			what := c.Subject
			if c.Kind != "certificate" {
				what = strings.TrimSpace(c.Kind + " " + c.Subject)
			}
			fmt.Fprintf(out, "%d %s %s\n", c.Index, c.Fingerprint, printable.Escape(what))
		} else {
			fmt.Fprintln(out, c.Fingerprint)
		}
	}
	return nil
}

// loadTarget reads a file (or standard input for "-"), or fetches a
// server's chain without trusting it when target is HOST:PORT and no such
// file exists.
func (a *app) loadTarget(ctx context.Context, cmd *cobra.Command, target string, f *fingerprintFlags) ([]pinSource, error) {
	var data []byte
	switch _, statErr := os.Stat(target); {
	case target == "-":
		b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxInput+1))
		if err != nil {
			return nil, fmt.Errorf("fingerprint: reading standard input: %w", err)
		}
		if len(b) > maxInput {
			return nil, badInput(fmt.Errorf("fingerprint: standard input holds more than %d bytes", maxInput))
		}
		data, target = b, "standard input"
	case statErr == nil || !looksLikeHostPort(target):
		b, err := files.ReadGiven(target, maxInput, false)
		if errors.Is(err, os.ErrNotExist) {
			return nil, badInput(fmt.Errorf("fingerprint: %w%s", err, addressHint(target)))
		}
		if err != nil {
			return nil, badInput(fmt.Errorf("fingerprint: %w", err))
		}
		data = b
	default:
		cs, err := fetchChain(ctx, cmd.ErrOrStderr(), target, f.serverName, f.timeout)
		if err != nil {
			return nil, err
		}
		return certSources(cs.PeerCertificates), nil
	}
	chain, err := certs.ParseCertificates(data)
	if err == nil {
		return certSources(chain), nil
	}
	if !errors.Is(err, certs.ErrNoCertificate) {
		return nil, badInput(fmt.Errorf("%w (%s)", err, quoteTarget(target)))
	}
	keys, err := certs.ParsePublicKeys(data)
	if err != nil {
		return nil, badInput(fmt.Errorf("%w (%s)", err, quoteTarget(target)))
	}
	out := make([]pinSource, len(keys))
	for i, k := range keys {
		out[i] = pinSource{kind: k.Kind, spki: k.SPKI, subj: k.Subject}
	}
	return out, nil
}

func quoteTarget(t string) string {
	if t == "standard input" {
		return t
	}
	return fmt.Sprintf("file %q", t)
}

func certSources(chain []*x509.Certificate) []pinSource {
	out := make([]pinSource, len(chain))
	for i, c := range chain {
		out[i] = pinSource{kind: "certificate", cert: c, spki: c.RawSubjectPublicKeyInfo}
	}
	return out
}

// fetchChain connects to addr and completes a handshake only to read the
// server's certificates: nothing is sent, nothing trusted. The chain is
// kept as soon as it arrives, so that a server that then ends the
// handshake (a TLS 1.2 server requiring a client certificate does) still
// yields its certificates, with a note on stderr. The state it returns
// holds at least one certificate.
func fetchChain(ctx context.Context, stderr io.Writer, addr, serverName string, timeout time.Duration) (tls.ConnectionState, error) {
	var got [][]byte
	sn := client.ServerName(addr, serverName)
	cfg := &tls.Config{
		ServerName:         sn,
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			got = raw
			return nil
		},
	}
	conn, err := client.Dial(ctx, addr, cfg, timeout)
	if err == nil {
		defer conn.Close()
		return conn.ConnectionState(), nil
	}
	if len(got) == 0 {
		return tls.ConnectionState{}, err
	}
	fmt.Fprintf(stderr, "tlspin: note: the TLS handshake failed after the server sent its certificate (%v); using the certificate it sent\n", err)
	cs := tls.ConnectionState{ServerName: sn}
	for i, der := range got {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return tls.ConnectionState{}, fmt.Errorf("certificate #%d the server %s sent: %w", i, addr, err)
		}
		cs.PeerCertificates = append(cs.PeerCertificates, c)
	}
	return cs, nil
}

// looksLikeHostPort reports whether s, which names no file, is a server's
// address: HOST:PORT with a port send would dial, a number from 1 to
// 65535 or a service name (example.com:https).
func looksLikeHostPort(s string) bool {
	h, p, err := net.SplitHostPort(s)
	if err != nil || h == "" {
		return false
	}
	return checkPort("", s, p, false) == nil
}
