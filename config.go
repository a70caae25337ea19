package tlspin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/core/policy"
	"github.com/tlspin/tlspin/core/verify"
)

// check asks the verifiers about the peer of cs, within the verify
// timeout, and returns nil only if they allow it.
func (v *Verifiers) check(ctx context.Context, cs tls.ConnectionState, side verify.Side, remote string) error {
	peer := "server"
	if side == verify.ServerVerifiesClient {
		peer = "client"
	}
	req := pintls.Request(cs, side, remote)
	if v.closed() {
		return &RejectionError{Peer: peer, Require: v.require, msg: "verifiers closed, every peer is rejected", failed: true, closed: true}
	}
	if len(req.PeerChain) == 0 {
		return &RejectionError{Peer: peer, Require: v.require, msg: "peer sent no certificate"}
	}
	// Verifications end at Close as well as with ctx.
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	stop := context.AfterFunc(v.ctx, cancel)
	defer stop()
	_, err := v.set.Policy.Decide(ctx, req)
	if err == nil {
		return nil
	}
	var pe *policy.RejectError
	if !errors.As(err, &pe) {
		return fmt.Errorf("tlspin: deciding on the %s: %w", peer, err)
	}
	e := rejection(peer, req.Leaf(), pe)
	if v.closed() {
		e.failed, e.closed = true, true
	}
	v.log.Debug("peer rejected", "peer", peer, "remote", remote, "error", e, "sha256", e.PeerSHA256, "spki", e.PeerSPKI)
	return e
}

// verifyConnection returns a VerifyConnection that asks the verifiers, then
// calls next (the caller's own) if they allowed the peer.
func (v *Verifiers) verifyConnection(ctx context.Context, side verify.Side, remote string, next func(tls.ConnectionState) error) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if err := v.check(ctx, cs, side, remote); err != nil {
			return err
		}
		if next != nil {
			return next(cs)
		}
		return nil
	}
}

// ClientConfig returns a client configuration that trusts exactly the
// servers the verifiers allow, sending serverName as SNI. Certificate
// authorities play no part unless a verifier (ca) checks them.
//
// Used alone, as with net/http or gRPC, the configuration does not know the
// address dialled: a verifier sees the server name only, so tofu records
// the server as serverName without a port, and an empty serverName (an IP
// address) leaves tofu nothing to record it under. Dial knows the address
// and records HOST:PORT, as the tlspin command does.
func (v *Verifiers) ClientConfig(serverName string) *tls.Config {
	return v.HookClientConfig(&tls.Config{}, serverName)
}

// ClientConfigForAddr is ClientConfig for connections to addr (HOST:PORT)
// that the caller dials itself: the verifiers see the address, so tofu
// records the server as HOST:PORT, as with Dial.
func (v *Verifiers) ClientConfigForAddr(serverName, addr string) *tls.Config {
	return v.hookClient(v.ctx, &tls.Config{}, serverName, addr)
}

// HookClientConfig fills base, the caller's own client configuration, so
// that the verifiers decide on the server, and returns it. A
// VerifyConnection already in base runs after the verifiers allow the
// server. base's certificate-authority check (RootCAs) is replaced by the
// verifiers; its client certificates, ALPN and the rest are kept. An empty
// serverName keeps base.ServerName.
func (v *Verifiers) HookClientConfig(base *tls.Config, serverName string) *tls.Config {
	return v.hookClient(v.ctx, base, serverName, "")
}

func (v *Verifiers) hookClient(ctx context.Context, base *tls.Config, serverName, remote string) *tls.Config {
	if serverName != "" {
		base.ServerName = serverName
	}
	if base.MinVersion < tls.VersionTLS12 {
		base.MinVersion = tls.VersionTLS12
	}
	// The chain is checked by the verifiers in VerifyConnection instead,
	// which crypto/tls calls on every handshake, resumed ones included.
	base.InsecureSkipVerify = true
	base.VerifyConnection = v.verifyConnection(ctx, verify.ClientVerifiesServer, remote, base.VerifyConnection)
	return base
}

// ServerConfig returns a server configuration presenting cert that
// requires every client to present a certificate the verifiers allow
// (mutual TLS).
func (v *Verifiers) ServerConfig(cert tls.Certificate) *tls.Config {
	return v.HookServerConfig(&tls.Config{Certificates: []tls.Certificate{cert}})
}

// HookServerConfig fills base, the caller's own server configuration with
// its certificates, so that every client must present a certificate the
// verifiers allow, and returns it. The verifiers see each client's address.
// A GetConfigForClient already in base still chooses the configuration per
// client, and the verifiers are hooked into what it returns; a
// VerifyConnection already set runs after the verifiers allow the client.
// base's ClientCAs check is replaced by the verifiers.
func (v *Verifiers) HookServerConfig(base *tls.Config) *tls.Config {
	if base.MinVersion < tls.VersionTLS12 {
		base.MinVersion = tls.VersionTLS12
	}
	base.ClientAuth = tls.RequireAnyClientCert
	choose := base.GetConfigForClient
	tmpl := base.Clone()
	tmpl.GetConfigForClient = nil
	base.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		c := tmpl
		if choose != nil {
			cc, err := choose(hi)
			if err != nil {
				return nil, err
			}
			if cc != nil {
				c = cc
			}
		}
		c = c.Clone()
		c.GetConfigForClient = nil
		c.ClientAuth = tls.RequireAnyClientCert
		remote := ""
		if hi.Conn != nil {
			remote = hi.Conn.RemoteAddr().String()
		}
		ctx := v.ctx
		if hc := hi.Context(); hc != nil {
			ctx = hc
		}
		c.VerifyConnection = v.verifyConnection(ctx, verify.ServerVerifiesClient, remote, c.VerifyConnection)
		return c, nil
	}
	return base
}
