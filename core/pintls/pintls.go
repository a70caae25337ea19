// Package pintls builds crypto/tls configurations whose peer decision is
// made by a verifier. Verification runs from tls.Config.VerifyConnection,
// which crypto/tls calls on every handshake, resumed sessions included
// (VerifyPeerCertificate is skipped on resumption). It is bounded by a
// timeout and fails closed: an error, a timeout or a missing verdict
// rejects the peer.
package pintls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/tlspin/tlspin/core/verify"
)

// RejectError is returned from the handshake when the verifier rejects.
type RejectError struct {
	// Reason is the verifier's explanation, or the failure that made the
	// host reject (crash, timeout, garbage).
	Reason string
	Err    error
}

func (e *RejectError) Error() string { return e.Reason }

// Unwrap returns verify.ErrRejected and the underlying failure, if any.
func (e *RejectError) Unwrap() []error {
	if e.Err != nil {
		return []error{verify.ErrRejected, e.Err}
	}
	return []error{verify.ErrRejected}
}

// Request builds the verifier request for a connection state.
func Request(cs tls.ConnectionState, side verify.Side, remote string) *verify.Request {
	chain := make([][]byte, len(cs.PeerCertificates))
	for i, c := range cs.PeerCertificates {
		chain[i] = c.Raw
	}
	return &verify.Request{
		PeerChain:   chain,
		ServerName:  cs.ServerName,
		Side:        side,
		RemoteAddr:  remote,
		TLSVersion:  cs.Version,
		CipherSuite: cs.CipherSuite,
		ALPN:        cs.NegotiatedProtocol,
		DidResume:   cs.DidResume,
	}
}

// Check asks d about a connection and returns nil only on an explicit allow.
func Check(ctx context.Context, d verify.Decider, req *verify.Request, timeout time.Duration) error {
	if len(req.PeerChain) == 0 {
		return &RejectError{Reason: "peer sent no certificate"}
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	v, err := d.Verify(ctx, req)
	switch {
	case err != nil:
		if errors.Is(err, context.DeadlineExceeded) {
			return &RejectError{Reason: fmt.Sprintf("verifier gave no verdict within %s (failing closed)", timeout), Err: err}
		}
		return &RejectError{Reason: fmt.Sprintf("verification failed (failing closed): %v", err), Err: err}
	case v == nil:
		return &RejectError{Reason: "verifier returned no verdict (failing closed)"}
	case !v.Allow:
		reason := v.Reason
		if reason == "" {
			reason = "verifier rejected the peer without a reason"
		}
		return &RejectError{Reason: reason}
	}
	return nil
}

// Options tune the configurations built here.
type Options struct {
	// Timeout bounds one verification (0: none beyond the decider's own).
	Timeout time.Duration
	// Context is the parent of every verification's context; nil means
	// context.Background (the handshake itself has no context to offer
	// VerifyConnection).
	Context context.Context
}

func (o Options) verifyConnection(d verify.Decider, side verify.Side, remote string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		ctx := o.Context
		if ctx == nil {
			ctx = context.Background()
		}
		return Check(ctx, d, Request(cs, side, remote), o.Timeout)
	}
}

// ClientConfig returns a client configuration that trusts exactly what d
// allows: certificate-authority checks are replaced by d, never skipped
// without it. clientCert, if not nil, is presented for mutual TLS.
func ClientConfig(d verify.Decider, serverName, remote string, clientCert *tls.Certificate, o Options) *tls.Config {
	c := &tls.Config{
		ServerName: serverName,
		MinVersion: tls.VersionTLS12,
		// The chain is checked by d in VerifyConnection instead.
		InsecureSkipVerify: true,
		VerifyConnection:   o.verifyConnection(d, verify.ClientVerifiesServer, remote),
	}
	if clientCert != nil {
		c.Certificates = []tls.Certificate{*clientCert}
	}
	return c
}

// ServerConfig returns a server configuration presenting cert. With a
// non-nil d, every client must present a certificate that d allows; remote
// maps a handshake to the client's address for the request.
func ServerConfig(cert tls.Certificate, d verify.Decider, o Options) *tls.Config {
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// No TLS 1.3 session tickets: a client that closes without reading
		// them (the recipe's client does) makes the kernel reset the
		// connection, and the server loses what the client sent. tlspin's
		// own client does not resume sessions, so nothing is lost.
		SessionTicketsDisabled: true,
	}
	if d != nil {
		c.ClientAuth = tls.RequireAnyClientCert
		c.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			cc := c.Clone()
			cc.GetConfigForClient = nil
			addr := ""
			if hi.Conn != nil {
				addr = hi.Conn.RemoteAddr().String()
			}
			cc.VerifyConnection = o.verifyConnection(d, verify.ServerVerifiesClient, addr)
			return cc, nil
		}
	}
	return c
}
