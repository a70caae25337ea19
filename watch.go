package tlspin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/printable"
	"github.com/tlspin/tlspin/internal/recheck"
)

// Watch asks the verifiers again about the peer of a live connection
// whenever one of them says its policy changed (an allowlist reloaded, a
// tofu store edited or added to) or its plugin was restarted, and calls
// revoked, once, with the *RejectionError when they no longer allow the
// peer: close the connection then. A TLS connection is verified once, at
// its handshake; without Watch, one that stays open outlives the removal
// of its peer's pin.
//
// since is when the decision that allowed the peer began, taken before
// its handshake: a change after it has the peer asked again at once,
// even one that came while the handshake was finishing (the zero time
// asks at once, whenever the decision was). Changes are answered within
// about a second, and a burst of them (tofu recording a first use for
// each new peer) costs one round of questions a second, not one per
// change.
//
// The verifiers are asked as Check asks, with two differences: a verdict
// that allows the peer only by recording it (tofu's first use, after its
// record was removed) keeps the connection, since its handshake proved
// the peer holds its key, and nothing is recorded (so, in tofu's default
// mode, removing a peer's line does not cut it off: a new connection
// would be its first use, allowed; replace the line instead); and a
// verifier that fails (crashes, hangs past the verify timeout, answers
// garbage) counts as it does at a handshake: unless RequireAny has
// another verifier allow the peer, the connection is revoked, failing
// closed, with an error that matches ErrVerifierFailed. revoked is called
// from the verifiers' own goroutines, one revocation at a time, and must
// not block. Call stop when the connection ends; after Close nothing is
// asked and nothing revoked. A Verifiers that Start did not make revokes
// at once, with an error matching ErrBadArgument.
func (v *Verifiers) Watch(p Peer, since time.Time, revoked func(error)) (stop func()) {
	if err := v.unstarted(); err != nil {
		// No verifiers allow the peer: revoked at once, failing closed,
		// from a goroutine of its own as the verifiers' would be.
		var stopped atomic.Bool
		go func() {
			if !stopped.Load() {
				revoked(err)
			}
		}()
		return func() { stopped.Store(true) }
	}
	return v.watch(p, since, revoked, nil)
}

// watch is Watch for a connection that is dropped from the watch once
// alive reports it closed (nil: only by stop).
func (v *Verifiers) watch(p Peer, since time.Time, revoked func(error), alive func() bool) (stop func()) {
	req := p.request()
	return v.watched.Add(recheck.Conn{
		Since: since,
		// The same question about connections to one peer, asked once.
		Key: fmt.Sprintf("%d|%q|%q|%x", req.Side, req.ServerName, req.RemoteAddr, req.ChainDigest()),
		Check: func(ctx context.Context) error {
			_, err := v.decide(ctx, req)
			return err
		},
		Revoke: func(err error) {
			revoked(fmt.Errorf("%w (asked again after a verifier's policy changed)", err))
		},
		Alive: alive,
	})
}

// watchConn watches a connection of Dial or Listen, whose verification
// began at since, unless WithoutRecheck: a peer no longer allowed has its
// connection closed underneath the *tls.Conn, with a warning. raw is the
// connection under conn; it must be a syscall.Conn, whose closing the
// watch can see without being told.
func (v *Verifiers) watchConn(conn *tls.Conn, raw net.Conn, client bool, addr, serverName string, since time.Time) {
	sc, ok := raw.(syscall.Conn)
	if v.noRecheck || !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	// Control fails once the connection is closed.
	alive := func() bool { return rc.Control(func(uintptr) {}) == nil }
	peer := peerName(verify.ClientVerifiesServer)
	if client {
		peer = peerName(verify.ServerVerifiesClient)
	}
	remote := conn.RemoteAddr().String()
	v.watch(PeerOf(conn.ConnectionState(), client, addr, serverName), since, func(err error) {
		if !alive() {
			return // closed by its owner meanwhile: nothing to tell
		}
		raw.Close()
		kv := []any{"remote", remote, "reason", printable.Escape(err.Error())}
		var re *RejectionError
		if errors.As(err, &re) && re.PeerSHA256 != "" {
			kv = append(kv, "peer_sha256", re.PeerSHA256, "peer_spki", re.PeerSPKI)
		}
		v.log.Warn("closed a connection: asked again after a policy change, the verifiers no longer allow the "+peer, kv...)
	}, alive)
}

// PeerOf returns the peer of a connection's state, for Watch: client says
// the peer is a client of ours, addr is the address the verifiers were
// given at the handshake (the client's; HOST:PORT as dialled for a
// server), serverName the name asked for when the state has none (an IP
// address sends no SNI).
func PeerOf(cs tls.ConnectionState, client bool, addr, serverName string) Peer {
	p := Peer{Client: client, Addr: addr, ServerName: cs.ServerName}
	if p.ServerName == "" {
		p.ServerName = serverName
	}
	for _, c := range cs.PeerCertificates {
		p.Chain = append(p.Chain, c.Raw)
	}
	return p
}

// request is what the verifiers are asked about p.
func (p Peer) request() *verify.Request {
	side := verify.ClientVerifiesServer
	if p.Client {
		side = verify.ServerVerifiesClient
	}
	// Never a handshake's: no Commit follows (Check and Watch record
	// nothing).
	return &verify.Request{PeerChain: p.Chain, ServerName: p.ServerName, Side: side, RemoteAddr: p.Addr, NoCommit: true}
}

// watchChanges has every policy change of the verifiers start a round of
// questions about the watched connections.
func (v *Verifiers) watchChanges() {
	for _, p := range v.set.Plugins {
		p.OnPolicyChange(func(verify.PolicyChange) { v.watched.Changed() })
	}
}
