// Package ca is ordinary X.509 verification, the baseline that pinning
// replaces: the peer's chain must lead to a trusted root (the system roots,
// or the certificates of option ca-file) and, for a server, the leaf must
// be valid for the host name. A server verifying clients checks the chain
// for client authentication and no name unless server-name is given.
//
// The name checked is option server-name, else the server name the client
// asked for (SNI), else the host of the remote address (an IP address is
// checked against the certificate's IP SANs; a unix socket's, unix:/path,
// has none). A server for which none of them is known is rejected: without
// a name, any certificate of a trusted CA would pass.
package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/files"
	"github.com/tlspin/tlspin/verifiers/pinverifier"
)

// Name is the verifier's registered name.
const Name = "ca"

// Verifier verifies chains against a root pool.
type Verifier struct {
	log hclog.Logger
	now func() time.Time

	roots      *x509.CertPool // nil: the system roots
	rootsDesc  string
	serverName string

	// anyClient warns, once, that clients are checked against the system
	// roots with no name: any client a public CA issued a certificate to
	// passes.
	anyClient sync.Once
}

var (
	_ verify.Verifier     = (*Verifier)(nil)
	_ verify.ValueChecker = (*Verifier)(nil)
)

// New returns an unconfigured ca verifier logging to log (nil: nowhere).
func New(log hclog.Logger) *Verifier {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Verifier{log: log, now: time.Now, rootsDesc: "the system roots"}
}

// Describe lists the options.
func (v *Verifier) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{
		Name:    Name,
		Version: "1",
		Summary: "ordinary X.509 chain and host-name verification against the system roots or a CA file (the baseline pinning replaces)",
		Options: []verify.Option{
			{Name: "ca-file", Description: "PEM (or DER) file of trusted root certificates, instead of the system roots; repeat for several files", Repeated: true},
			{Name: "server-name", Description: "host name the peer's certificate must be valid for (default: the name the client asked for, else the remote host)"},
		},
	}, nil
}

// Configure loads the roots.
func (v *Verifier) Configure(ctx context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	paths, name, err := v.options(req.Options)
	if err != nil {
		return nil, err
	}
	var roots *x509.CertPool
	desc := "the system roots"
	if fs := req.Options["ca-file"]; len(fs) > 0 {
		roots = x509.NewCertPool()
		n := 0
		for i, f := range fs {
			data, err := files.ReadTrusted(paths[i])
			if err != nil {
				return nil, &verify.OptionError{Option: "ca-file", Value: f, Err: fmt.Errorf("ca: %w", err)}
			}
			cs, err := certs.ParseCertificatesOf(paths[i], data)
			if err != nil {
				return nil, &verify.OptionError{Option: "ca-file", Value: f, Err: err}
			}
			for _, c := range cs {
				if !c.IsCA {
					v.log.Warn(fmt.Sprintf("%s: certificate %q is not a CA; it is trusted as a root all the same", f, c.Subject))
				}
				roots.AddCert(c)
				n++
			}
		}
		desc = fmt.Sprintf("the %d certificates of %s", n, strings.Join(fs, ", "))
		if n == 1 {
			desc = "the certificate of " + strings.Join(fs, ", ")
		}
	}
	v.roots, v.rootsDesc, v.serverName = roots, desc, name
	return &verify.ConfigureResponse{NeedsChain: true}, nil
}

// CheckValues checks the options as Configure does, that each CA file can
// be read and, if it is at most files.CheckedSize, the certificates in
// it; a larger file is checked when the verifier starts. It keeps
// nothing and logs nothing (a certificate that is not a CA is only
// warned of, by Configure).
func (v *Verifier) CheckValues(opts verify.Options) error {
	paths, _, err := v.options(opts)
	if err != nil {
		return err
	}
	for i, p := range paths {
		data, read, err := files.ReadIfSmall(p, files.CheckedSize)
		if err != nil {
			return &verify.OptionError{Option: "ca-file", Value: opts["ca-file"][i], Err: fmt.Errorf("ca: %w", err)}
		}
		if read {
			if _, err := certs.ParseCertificatesOf(p, data); err != nil {
				return &verify.OptionError{Option: "ca-file", Value: opts["ca-file"][i], Err: err}
			}
		}
	}
	return nil
}

// options returns the paths of the CA files and the server name.
func (v *Verifier) options(opts verify.Options) (paths []string, name string, err error) {
	d, _ := v.Describe(context.Background())
	if err := verify.CheckOptions(d, opts); err != nil {
		return nil, "", err
	}
	for _, f := range opts["ca-file"] {
		p, err := files.ExpandHome(f)
		if err != nil {
			return nil, "", &verify.OptionError{Option: "ca-file", Value: f, Err: err}
		}
		paths = append(paths, p)
	}
	if s := opts["server-name"]; len(s) == 1 {
		name = strings.TrimSpace(s[0])
		if name == "" || (strings.ContainsAny(name, " /:") && net.ParseIP(name) == nil) {
			return nil, "", &verify.OptionError{Option: "server-name", Value: s[0], Err: errors.New("want a host name or an IP address")}
		}
	}
	return paths, name, nil
}

// Verify builds a chain from the peer's certificates to a trusted root and
// checks the name.
func (v *Verifier) Verify(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
	if len(req.PeerChain) == 0 {
		return &verify.Verdict{Reason: "ca: peer sent no certificate"}, nil
	}
	leaf, err := x509.ParseCertificate(req.PeerChain[0])
	if err != nil {
		return &verify.Verdict{Reason: fmt.Sprintf("ca: cannot parse the peer's certificate: %v", err)}, nil
	}
	inter := x509.NewCertPool()
	for _, der := range req.PeerChain[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return &verify.Verdict{Reason: fmt.Sprintf("ca: cannot parse a certificate of the peer's chain: %v", err)}, nil
		}
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		CurrentTime:   v.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSName:       v.name(req),
	}
	if req.Side == verify.ServerVerifiesClient {
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		if v.roots == nil && opts.DNSName == "" {
			v.anyClient.Do(func() {
				v.log.Warn("verifying clients against the system roots with no server-name: any client holding a certificate that a public CA issued for client authentication is accepted; give ca-file=FILE with your own CA, or server-name=NAME")
			})
		}
	} else if opts.DNSName == "" {
		// x509 checks no name when given none: any certificate of a
		// trusted CA would do, whoever it was issued to.
		return &verify.Verdict{Reason: "ca: no host name to check the server's certificate against (the client sent none, and its address, if known, names no host); set server-name=NAME"}, nil
	}
	chains, err := leaf.Verify(opts)
	if err != nil {
		return &verify.Verdict{Reason: v.explain(leaf, opts.DNSName, err)}, nil
	}
	root := chains[0][len(chains[0])-1]
	matched := fmt.Sprintf("chain to %q", root.Subject.String())
	if opts.DNSName != "" {
		matched += fmt.Sprintf(", valid for %q", opts.DNSName)
	}
	return &verify.Verdict{Allow: true, Matched: matched, CacheFor: cacheFor(chains[0], opts.CurrentTime)}, nil
}

// maxCacheFor bounds how long the host may reuse an allow.
const maxCacheFor = time.Minute

// cacheFor lets the host reuse an allow for a minute, never past the
// expiry of any certificate of the verified chain. Rejections are not
// cached: a certificate that is not yet valid may become valid.
func cacheFor(chain []*x509.Certificate, now time.Time) time.Duration {
	d := maxCacheFor
	for _, c := range chain {
		d = min(d, c.NotAfter.Sub(now))
	}
	return max(d, 0)
}

// name returns the host name to check, or "" for none.
func (v *Verifier) name(req *verify.Request) string {
	if v.serverName != "" {
		return v.serverName
	}
	if req.Side == verify.ServerVerifiesClient {
		return ""
	}
	if req.ServerName != "" {
		return req.ServerName
	}
	if strings.HasPrefix(req.RemoteAddr, "unix:") {
		return "" // not "unix", which net.SplitHostPort would take for a host
	}
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

// explain turns an x509 error into a reason that says what to do.
func (v *Verifier) explain(leaf *x509.Certificate, name string, err error) string {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var inv x509.CertificateInvalidError
	subject := pinverifier.Subject(leaf.Raw)
	switch {
	case errors.As(err, &ua):
		return fmt.Sprintf("ca: certificate%s issued by %q does not chain to %s: %v; give its CA with ca-file=FILE, or pin it instead (spkipin)",
			subject, leaf.Issuer.String(), v.rootsDesc, err)
	case errors.As(err, &hn):
		return fmt.Sprintf("ca: certificate%s is not valid for %q: %v; set server-name=NAME if you connect by another name", subject, name, err)
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return fmt.Sprintf("ca: certificate%s is expired or not yet valid (valid %s to %s): %v", subject,
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), err)
	}
	return fmt.Sprintf("ca: certificate%s rejected: %v", subject, err)
}
