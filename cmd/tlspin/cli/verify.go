package cli

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/client"
	"github.com/tlspin/tlspin/internal/printable"
)

type verifyFlags struct {
	side, serverName, remote string
	json                     bool
	timeout                  time.Duration
	v                        verifierFlags
}

func (a *app) verifyCommand() *cobra.Command {
	f := &verifyFlags{}
	c := &cobra.Command{
		Use:   "verify --verifier NAME[:opts] [flags] FILE...|HOST:PORT",
		Short: "ask the verifier(s) about a certificate, without a connection",
		Long: `Run the verifier(s) on a certificate or chain and print the verdict, the
reason and the rule that matched, exactly as send (--side server) or serve
(--side client) would decide on a peer presenting it.

FILE may hold PEM certificates (alone or with their private key, like
tlspin cert's output) or DER. Several files make one chain, in the order
given: the leaf first, then its issuers. Nothing goes over the network.

Given HOST:PORT (and no such file), tlspin connects, reads the chain the
server presents without trusting it, closes, then asks the verifier(s).

The verifiers are started and combined (--require, --no-cache) exactly as
for a handshake, so the verdict is the one send or serve would get, with
one exception: verify records nothing, so a peer tofu would accept only by
recording it (its first use) is rejected here. A FILE has no address: give
--remote for a verifier that looks its peer up by address, as tofu does
(a server's HOST:PORT, a client's address as serve logs it).

Exit codes, as send's: 0 allowed, 2 usage (bad flags, unreadable FILE),
3 rejected by a verdict, 4 a verifier failed (an error or no verdict, a
crash, a timeout, garbage: the peer is rejected, fail closed), 1 anything else (HOST:PORT unreachable).`,
		Example: `  tlspin verify --verifier md5pin --pin 709f0c... cert.pem
  tlspin verify --verifier ca:ca-file=root.pem --server-name api.test leaf.pem intermediate.pem
  tlspin verify --side client --verifier allowlist:file=clients.txt client.der
  tlspin verify --verifier tofu --remote example.com:443 server.pem
  tlspin verify --json --verifier spkipin --pin 'sha256//BASE64=' example.com:443`,
		Args: argSpec{min: 1, max: -1, takes: "FILE... (the leaf first, then its issuers) or HOST:PORT", tooFew: "give the certificate or the server"}.check,
		RunE: func(cmd *cobra.Command, args []string) error { return a.runVerify(cmd, f, args) },
	}
	fs := c.Flags()
	f.v.register(fs, "certificate")
	fs.StringVar(&f.side, "side", "server", "whose certificate it is: server (checked as send checks a server) or client (as serve checks a client)")
	fs.StringVar(&f.serverName, "server-name", "", "server name the request carries (with HOST:PORT: also the SNI sent; default its host unless an IP address)")
	fs.StringVar(&f.remote, "remote", "", "with FILEs: the peer's address the request carries, HOST:PORT (tofu looks a server up by it, a client by its host)")
	fs.BoolVar(&f.json, "json", false, "print JSON")
	fs.DurationVar(&f.timeout, "timeout", client.DefaultTimeout, "with HOST:PORT: dial and handshake timeout")
	return c
}

// verifyJSONSchema names the layout of verify --json.
const verifyJSONSchema = "tlspin.verify/v1"

// verifyJSON is the --json output.
type verifyJSON struct {
	Schema     string      `json:"schema"`
	Source     []string    `json:"source"`
	Side       string      `json:"side"`
	ServerName string      `json:"server_name"`
	Allowed    bool        `json:"allowed"`
	Verdict    string      `json:"verdict"`
	Reason     string      `json:"reason"`
	Matched    string      `json:"matched"`
	Chain      []chainCert `json:"chain"`
}

type chainCert struct {
	Subject  string `json:"subject"`
	Issuer   string `json:"issuer"`
	NotAfter string `json:"not_after"`
	SHA256   string `json:"sha256"`
}

func (a *app) runVerify(cmd *cobra.Command, f *verifyFlags, args []string) error {
	ctx := cmd.Context()
	var side verify.Side
	switch f.side {
	case "server":
		side = verify.ClientVerifiesServer
	case "client":
		side = verify.ServerVerifiesClient
	default:
		return usagef("--side %q: want server or client", f.side)
	}
	if err := checkServerName(f.serverName); err != nil {
		return err
	}
	// Read the peer before starting anything: a typo starts no plugin.
	req, chain, err := a.verifyRequest(ctx, cmd.ErrOrStderr(), f, side, args)
	if err != nil {
		return err
	}
	vs, err := a.startVerifiers(ctx, &f.v)
	if err != nil {
		return err
	}
	defer vs.Close()
	verdicts, checkErr := vs.Check(ctx, tlspin.Peer{Chain: req.PeerChain, Client: side == verify.ServerVerifiesClient, ServerName: req.ServerName, Addr: req.RemoteAddr})

	doc := verifyJSON{Schema: verifyJSONSchema, Source: args, Side: f.side, ServerName: req.ServerName, Allowed: checkErr == nil, Verdict: "allowed"}
	if checkErr != nil {
		doc.Verdict = "rejected"
		doc.Reason = checkErr.Error()
		if re := (*tlspin.RejectionError)(nil); errors.As(checkErr, &re) {
			doc.Reason = re.Reason()
		}
	}
	var reasons, matched []string
	for _, v := range verdicts {
		if v.Reason != "" {
			reasons = append(reasons, v.Verifier+": "+v.Reason)
		}
		if v.Matched != "" {
			matched = append(matched, v.Verifier+"="+v.Matched)
		}
	}
	if len(reasons) > 0 {
		doc.Reason = strings.Join(reasons, "; ")
	}
	doc.Matched = strings.Join(matched, ",")
	for _, c := range chain {
		sum := sha256.Sum256(c.Raw)
		doc.Chain = append(doc.Chain, chainCert{
			Subject: c.Subject.String(), Issuer: c.Issuer.String(),
			NotAfter: c.NotAfter.UTC().Format(time.RFC3339), SHA256: hex.EncodeToString(sum[:]),
		})
	}
	out := cmd.OutOrStdout()
	if f.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return err
		}
	} else {
		// Reasons and names come from plugins and certificates.
		fmt.Fprintf(out, "verdict: %s\n", doc.Verdict)
		if doc.Reason != "" {
			fmt.Fprintf(out, "reason: %s\n", printable.Escape(doc.Reason))
		}
		if doc.Matched != "" {
			fmt.Fprintf(out, "matched: %s\n", printable.Escape(doc.Matched))
		}
		for i, c := range doc.Chain {
			fmt.Fprintf(out, "chain[%d]: %s (issuer %s, sha256 %s)\n", i, printable.Escape(c.Subject), printable.Escape(c.Issuer), c.SHA256)
		}
	}
	if checkErr != nil {
		return shownVerdict{checkErr}
	}
	return nil
}

// shownVerdict is the error of a verify whose verdict is already on
// standard output: the error line does not repeat its reasons, and the
// exit code still comes from err.
type shownVerdict struct{ err error }

func (e shownVerdict) Error() string {
	return "rejected: the verdict and its reasons are on standard output"
}
func (e shownVerdict) Unwrap() error { return e.err }

// verifyRequest reads the peer's chain from files, or from a live server
// when the only argument is HOST:PORT and no such file exists, and makes
// the request a handshake would.
func (a *app) verifyRequest(ctx context.Context, stderr io.Writer, f *verifyFlags, side verify.Side, args []string) (*verify.Request, []*x509.Certificate, error) {
	if len(args) == 1 {
		if _, err := os.Stat(args[0]); errors.Is(err, os.ErrNotExist) && looksLikeHostPort(args[0]) {
			if side != verify.ClientVerifiesServer {
				return nil, nil, usagef("%s: a live server's chain is checked with --side server; give files for --side client", args[0])
			}
			if f.remote != "" {
				return nil, nil, usagef("--remote %q: a live server's address is the one dialled, %s; --remote is for FILEs", f.remote, args[0])
			}
			cs, err := fetchChain(ctx, stderr, args[0], f.serverName, f.timeout)
			if err != nil {
				return nil, nil, err
			}
			return pintls.Request(cs, side, args[0]), cs.PeerCertificates, nil
		}
	}
	if f.remote != "" {
		host, port, err := net.SplitHostPort(f.remote)
		if err != nil || host == "" || port == "" {
			return nil, nil, usagef("--remote %q: want HOST:PORT%s", f.remote, addressHint(f.remote))
		}
		if !allDigits(port) {
			return nil, nil, usagef("--remote %q: port %q: want a number, 1 to 65535", f.remote, port)
		}
		if err := checkPort("--remote", f.remote, port, false); err != nil {
			return nil, nil, err
		}
	}
	var chain []*x509.Certificate
	for _, p := range args {
		cs, err := certs.LoadCertificates(p)
		if errors.Is(err, os.ErrNotExist) && len(args) == 1 {
			// Neither a file nor HOST:PORT: say what was probably
			// meant, as fingerprint does.
			return nil, nil, usageError{fmt.Errorf("%w%s", err, addressHint(p))}
		}
		if err != nil {
			return nil, nil, usageError{err}
		}
		chain = append(chain, cs...)
	}
	req := pintls.Request(tls.ConnectionState{PeerCertificates: chain, ServerName: f.serverName}, side, f.remote)
	return req, chain, nil
}
