package tlspin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/core/policy"
	"github.com/tlspin/tlspin/core/verify"
)

// check asks the verifiers about the peer of cs, within the verify
// timeout, and returns nil only if they allow it. What an allowing verdict
// asks to commit after the handshake (a tofu pin) goes into pending.
func (v *Verifiers) check(ctx context.Context, cs tls.ConnectionState, side verify.Side, remote, name string, pending *pintls.Pending) error {
	req := pintls.Request(cs, side, remote)
	if req.ServerName == "" {
		req.ServerName = name
	}
	outs, err := v.decide(ctx, req)
	if err != nil {
		return err
	}
	rec := &recording{v: v, outs: outs}
	if slices.ContainsFunc(outs, func(o policy.Outcome) bool { return o.Allowed() && o.Verdict.Commit }) {
		if pending == nil {
			if err := v.unrecorded(req, outs, unrecordedHow(req.Side)); err != nil {
				return err
			}
		}
		pending.Set(rec, req, v.timeout)
	}
	if v.log.IsInfo() {
		// Said once the handshake has succeeded (until then the peer has
		// not proved it holds its key) and the record made: the
		// verifiers that still allow the peer then. It keeps nothing
		// of req: a server that never confirms (net/http) keeps it for
		// a minute, with 1,024 others, and a PendingSet counts against
		// its bound only the request of a record, not what a log line
		// holds (a chain of 256 KiB and a server name of 64 KiB, from a
		// client that need not hold any key).
		pending.After(func() {
			kv := []any{"remote", remote}
			for _, o := range rec.outs {
				if o.Allowed() {
					why := strings.TrimSpace(o.Verdict.Matched + " " + o.Verdict.Reason)
					if why == "" {
						why = "allowed" // a verdict that gives no reason
					}
					kv = append(kv, o.Name, why)
				}
			}
			v.log.Info("verified the "+peerName(side), kv...)
		})
	}
	return nil
}

// unrecorded judges outs again for a configuration that cannot record a
// peer after its handshake: a verdict that allows the peer only if it is
// recorded then (tofu's first use) is a rejection, or a verifier such as
// tofu would enforce nothing there. It returns a *RejectionError unless
// the policy still allows the peer.
func (v *Verifiers) unrecorded(req *verify.Request, outs []policy.Outcome, how string) error {
	peer := peerName(req.Side)
	outs = slices.Clone(outs)
	for i, o := range outs {
		if o.Allowed() && o.Verdict.Commit {
			outs[i].Verdict = &verify.Verdict{Reason: fmt.Sprintf("%s would allow this %s only as a first use, by recording it after the handshake, but %s",
				o.Name, peer, how)}
		}
	}
	mode := policy.Mode(v.require)
	if mode.Allows(outs) {
		return nil
	}
	return rejection(peer, req.Leaf(), &policy.RejectError{Mode: mode, Outcomes: outs})
}

// recording commits what the verification whose outcomes were outs asked
// to record, once the handshake has succeeded. A verifier that allowed
// only on condition of a record (tofu's first use) and could not make it
// (another process recorded another key for the peer meanwhile, the
// store's lock was held, the plugin died) has not allowed the peer: its
// outcome becomes that of a verifier that failed (no verdict, as an error
// of Verify), and the policy is judged again. The *RejectionError
// returned then is the connection's rejection, after its handshake:
// close it.
type recording struct {
	v *Verifiers
	// outs are the verdicts; after a failed record that the policy
	// survives, the failed member's is a failure.
	outs []policy.Outcome
}

// Required reports whether the verifiers allowed the peer only on
// condition of the record: without it, would the policy still allow it?
// With require any, another verifier that allowed it without a record
// (a pin) is enough, and a record that a server's PendingSet dropped
// before Confirm (pintls.ErrDropped) does not cost the peer its
// connection.
func (r *recording) Required() bool {
	outs := slices.Clone(r.outs)
	for i, o := range outs {
		if o.Allowed() && o.Verdict.Commit {
			outs[i].Verdict, outs[i].Err = nil, pintls.ErrDropped
		}
	}
	return !policy.Mode(r.v.require).Allows(outs)
}

var _ pintls.Required = (*recording)(nil)

func (r *recording) Commit(ctx context.Context, req *verify.Request) (*verify.CommitResponse, error) {
	_, err := r.v.set.Policy.Commit(ctx, req)
	if err == nil {
		return &verify.CommitResponse{}, nil
	}
	var ce *policy.CommitError
	errors.As(err, &ce)
	peer := peerName(req.Side)
	outs := slices.Clone(r.outs)
	failed := false
	for i, o := range outs {
		// The commit of a member that did not ask for one (it allowed
		// without, or rejected while another allowed) takes nothing back.
		if !o.Allowed() || !o.Verdict.Commit {
			continue
		}
		merr := err // not knowing which member failed, each may have
		if ce != nil && i < len(ce.Errs) {
			merr = ce.Errs[i]
		}
		if merr == nil {
			continue
		}
		// The verifier's own error (another key recorded meanwhile, the
		// file unwritable), a timeout (the store's lock held past the
		// verify timeout), a crash: no verdict, as such an error of
		// Verify is none. It fails closed; trying again may succeed, or
		// bring the verdict on the key now recorded.
		failed = true
		outs[i].Verdict, outs[i].Err = nil, fmt.Errorf("%s allowed this %s only as a first use, to be recorded after the handshake, and could not record it: %w", o.Name, peer, merr)
	}
	if !failed {
		r.v.log.Debug("a verifier that did not ask to record the "+peer+" could not", "remote", req.RemoteAddr, "error", err)
		return &verify.CommitResponse{}, nil
	}
	mode := policy.Mode(r.v.require)
	if mode.Allows(outs) {
		r.v.log.Warn("could not record the "+peer+" the verifiers allowed; another verifier allows it", "remote", req.RemoteAddr, "error", err)
		r.outs = outs // what the "verified" line, after this, names
		return &verify.CommitResponse{}, nil
	}
	e := rejection(peer, req.Leaf(), &policy.RejectError{Mode: mode, Outcomes: outs})
	if r.v.closed() {
		// Close stopped the verifier that was to record: the error of a
		// closed Verifiers, as a verification cut short by Close.
		e.failed, e.closed = true, true
	}
	return nil, e
}

// unrecordedHow says what records a first use, for a configuration of
// side that cannot.
func unrecordedHow(s verify.Side) string {
	if s == verify.ServerVerifiesClient {
		return "this configuration cannot record it: use Listen, or tls.Server with ServerConfig or HookServerConfig and call Confirm after the handshake"
	}
	return "a configuration from ClientConfig or HookClientConfig knows neither the address dialled nor when the handshake succeeds, so it can neither find a record made under HOST:PORT nor make one: use Dial (as http.Transport's DialTLSContext), or ClientConfigForAddr and call its confirm function with the connection once its handshake has succeeded"
}

func peerName(s verify.Side) string {
	if s == verify.ServerVerifiesClient {
		return "client"
	}
	return "server"
}

// decide asks the verifiers about req, within the verify timeout, and
// returns their outcomes, and a *RejectionError unless they allow it.
func (v *Verifiers) decide(ctx context.Context, req *verify.Request) ([]policy.Outcome, error) {
	if err := v.unstarted(); err != nil {
		return nil, err // no verifiers: every peer rejected, as a misuse
	}
	peer := peerName(req.Side)
	if v.closed() {
		return nil, &RejectionError{Peer: peer, Require: v.require, msg: "verifiers closed, every peer is rejected", failed: true, closed: true}
	}
	if len(req.PeerChain) == 0 {
		return nil, &RejectionError{Peer: peer, Require: v.require, msg: "peer sent no certificate"}
	}
	// Verifications end at Close as well as with ctx.
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	stop := context.AfterFunc(v.ctx, cancel)
	defer stop()
	outs, err := v.set.Policy.Decide(ctx, req)
	if err == nil {
		return outs, nil
	}
	var pe *policy.RejectError
	if !errors.As(err, &pe) {
		return nil, fmt.Errorf("tlspin: deciding on the %s: %w", peer, err)
	}
	e := rejection(peer, req.Leaf(), pe)
	if v.closed() {
		// Close cut the verification short: the verifiers' failures
		// ("gave up waiting") are its doing, not theirs.
		e.failed, e.closed = true, true
		e.msg = "verifiers closed during the verification, every peer is rejected"
	}
	v.log.Debug("peer rejected", "peer", peer, "remote", req.RemoteAddr, "error", e, "sha256", e.PeerSHA256, "spki", e.PeerSPKI)
	return nil, e
}

// Peer is a peer to decide on outside a handshake (see Check).
type Peer struct {
	// Chain holds its certificates, DER, leaf first.
	Chain [][]byte
	// Client says the peer is a client of ours (mutual TLS); otherwise it
	// is a server we would dial.
	Client bool
	// ServerName is the name a client would ask a server for (SNI).
	ServerName string
	// Addr is the peer's address, HOST:PORT, if known.
	Addr string
}

// Check asks the verifiers about a certificate chain obtained without a
// handshake (read from files, say), exactly as they would decide on a
// peer presenting it, and returns each verifier's verdict when they allow
// it, or a *RejectionError. Nothing is recorded: no handshake proved that
// anyone holds the leaf's key. So a verdict that allows the peer only by
// recording it (tofu's first use) counts as a rejection here, as in a
// configuration that cannot record. Every element of the chain must be a
// certificate, as crypto/tls requires of a peer's.
func (v *Verifiers) Check(ctx context.Context, p Peer) ([]Verdict, error) {
	if err := v.unstarted(); err != nil {
		return nil, err
	}
	for i, der := range p.Chain {
		if _, err := x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("tlspin: element %d of %d in the chain is not a certificate: %w", i+1, len(p.Chain), err)
		}
	}
	req := p.request()
	outs, err := v.decide(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := v.unrecorded(req, outs, "a decision outside a handshake records nothing (tlspin send or a connection records a first use, tlspin known-pins add records a pin)"); err != nil {
		return nil, err
	}
	verdicts := make([]Verdict, len(outs))
	for i, o := range outs {
		verdicts[i] = verdictOf(o)
	}
	return verdicts, nil
}

// verifyConnection returns a VerifyConnection that asks the verifiers, then
// calls next (the caller's own) if they allowed the peer.
func (v *Verifiers) verifyConnection(ctx context.Context, side verify.Side, remote, name string, pending *pintls.Pending, next func(tls.ConnectionState) error) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if err := v.check(ctx, cs, side, remote, name, pending); err != nil {
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
// address dialled, nor when a handshake has succeeded, so it cannot record
// a peer: a server that a verifier would allow only by recording it on
// first contact (tofu) is rejected, failing closed, unless with
// RequireAny another verifier allows it. Dial (as http.Transport's
// DialTLSContext), or ClientConfigForAddr with its confirm function,
// record the server as HOST:PORT, as the tlspin command does.
func (v *Verifiers) ClientConfig(serverName string) *tls.Config {
	return v.HookClientConfig(&tls.Config{}, serverName)
}

// ClientConfigForAddr returns the configuration of one connection to addr
// (HOST:PORT) that the caller dials and handshakes itself, and the confirm
// function to call with that connection once its handshake has succeeded:
// only then has the server proved it holds its key, so only then does a
// verifier such as tofu record it (as HOST:PORT, as with Dial). Without
// the call nothing is recorded. crypto/tls asks the verifiers before it
// checks the server's signature, so a server that presents another's
// certificate without its key is allowed as a first use and then fails
// the handshake: confirm records nothing unless conn's handshake is
// complete and conn's server presented the very chain this configuration
// verified. It refuses otherwise (a failed or unfinished handshake,
// another connection, nil) with an error matching ErrBadArgument, and from
// then on, whatever connection it is given: nothing is ever recorded
// through this configuration, and the connection must be closed unused.
// A *RejectionError from confirm means the server was allowed only as a
// first use that could not be recorded (another process recorded another
// key for it meanwhile): close the connection unused. Called again,
// confirm answers as it did the first time, refusing again.
// The configuration verifies one server, once: a second handshake with
// it (another connection) fails, saying so, with an error matching
// ErrBadArgument, since what one connection would record is kept in it.
// It never renegotiates.
func (v *Verifiers) ClientConfigForAddr(serverName, addr string) (*tls.Config, func(ctx context.Context, conn *tls.Conn) error) {
	cc := &clientConfirm{addr: addr}
	cfg := v.hookClient(v.context(), &tls.Config{}, serverName, addr, &cc.pending)
	var used atomic.Bool
	check := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if used.Swap(true) {
			// A misuse, not a verdict on this server.
			return badArgument{errors.New("tlspin: this configuration from ClientConfigForAddr has verified a server already: call ClientConfigForAddr for each connection")}
		}
		if err := check(cs); err != nil {
			return err
		}
		cc.verified(cs.PeerCertificates)
		return nil
	}
	if err := v.unstarted(); err != nil {
		// Its handshakes fail (decide refuses); confirm says why too.
		return cfg, func(context.Context, *tls.Conn) error { return err }
	}
	return cfg, cc.confirm
}

// clientConfirm is the confirm function of a ClientConfigForAddr
// configuration, and what it needs to know that it is given the
// connection whose handshake that configuration verified, complete.
type clientConfirm struct {
	addr    string
	pending pintls.Pending

	mu sync.Mutex
	// chain is the DER of the chain the verifiers allowed; nil until
	// they have.
	chain [][]byte
	// refused is why confirm refused, for good: its first refusal
	// leaves nothing to commit.
	refused error
}

// verified keeps the chain the verifiers allowed.
func (cc *clientConfirm) verified(chain []*x509.Certificate) {
	der := make([][]byte, len(chain))
	for i, c := range chain {
		der[i] = c.Raw
	}
	cc.mu.Lock()
	cc.chain = der
	cc.mu.Unlock()
}

// confirm commits what the verification asked for, if conn is the
// connection it verified and its handshake is complete.
func (cc *clientConfirm) confirm(ctx context.Context, conn *tls.Conn) error {
	if err := cc.admit(conn); err != nil {
		return err
	}
	return committed(cc.pending.Commit(ctx))
}

// admit returns nil if conn's handshake is complete with the server this
// configuration verified; otherwise why not, now and on every later call,
// so that nothing is ever committed.
func (cc *clientConfirm) admit(conn *tls.Conn) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.refused != nil {
		return cc.refused
	}
	why := cc.mismatch(conn)
	if why == nil {
		return nil
	}
	cc.refused = fmt.Errorf("tlspin: confirm for %q: %w; nothing recorded, and nothing will be through this configuration: close the connection", cc.addr, badArgument{why})
	return cc.refused
}

// mismatch says why conn is not a connection whose server this
// configuration verified and proved its key, or nil; cc.mu must be held.
func (cc *clientConfirm) mismatch(conn *tls.Conn) error {
	if conn == nil {
		return errors.New("no connection given")
	}
	cs := conn.ConnectionState()
	if !cs.HandshakeComplete {
		return errors.New("the connection's handshake did not complete (it failed, or has not run): its server has not proved it holds the key of its certificate")
	}
	if cc.chain == nil {
		return errors.New("this configuration verified no server: confirm takes the connection made with it")
	}
	if !sameChain(cc.chain, cs.PeerCertificates) {
		got := "none"
		if len(cs.PeerCertificates) > 0 {
			got = fmt.Sprintf("%x", sha256.Sum256(cs.PeerCertificates[0].Raw))
		}
		return fmt.Errorf("the connection's server (certificate sha256 %s) is not the one this configuration verified (sha256 %x): confirm takes the connection made with it", got, sha256.Sum256(cc.chain[0]))
	}
	return nil
}

// sameChain reports whether chain is the chain der, certificate by
// certificate, comparing each in constant time.
func sameChain(der [][]byte, chain []*x509.Certificate) bool {
	if len(der) != len(chain) || len(der) == 0 {
		return false
	}
	same := 1
	for i, c := range chain {
		same &= subtle.ConstantTimeCompare(der[i], c.Raw)
	}
	return same == 1
}

// committed is the error of a commit: the *RejectionError of a first use
// that could not be recorded, as it is.
func committed(err error) error {
	if re := (*RejectionError)(nil); errors.As(err, &re) {
		return re
	}
	return err
}

// HookClientConfig fills base, the caller's own client configuration, so
// that the verifiers decide on the server, and returns it. A
// VerifyConnection already in base runs after the verifiers allow the
// server. base's certificate-authority check (RootCAs) is replaced by the
// verifiers; its client certificates, ALPN and the rest are kept. An empty
// serverName keeps base.ServerName. Set base's own VerifyConnection before
// this call, never after: it sets InsecureSkipVerify, leaving the verifiers
// in VerifyConnection as the only check, so one assigned afterwards would
// replace them and accept any server. A program that enables
// renegotiation on base gets crypto/tls's own check that the server keeps
// its certificate. With Encrypted Client Hello
// (EncryptedClientHelloConfigList), the verifiers decide on the server of
// the inner name; a server that rejects ECH has crypto/tls check its
// certificate for the public name against RootCAs (or
// EncryptedClientHelloRejectionVerify) only to fail the handshake with its
// retry configurations, which that check alone vouches for.
func (v *Verifiers) HookClientConfig(base *tls.Config, serverName string) *tls.Config {
	return v.hookClient(v.context(), base, serverName, "", nil)
}

func (v *Verifiers) hookClient(ctx context.Context, base *tls.Config, serverName, remote string, pending *pintls.Pending) *tls.Config {
	if serverName != "" {
		base.ServerName = serverName
	}
	// A client's MinVersion 0 already means TLS 1.2 in crypto/tls, and is
	// what Encrypted Client Hello requires (or TLS 1.3): a hooked
	// configuration with EncryptedClientHelloConfigList, set before or
	// after the hook, must keep working.
	if base.MinVersion != 0 && base.MinVersion < tls.VersionTLS12 {
		base.MinVersion = tls.VersionTLS12
	}
	// The chain is checked by the verifiers in VerifyConnection instead,
	// which crypto/tls calls on every handshake, resumed ones included.
	base.InsecureSkipVerify = true
	// crypto/tls sends no server name for an IP address, so the request
	// would carry none: the verifiers get the name the client asked for.
	base.VerifyConnection = v.verifyConnection(ctx, verify.ClientVerifiesServer, remote, base.ServerName, pending, base.VerifyConnection)
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
// Set GetConfigForClient before this call, never after: one set after
// replaces the hook, and crypto/tls uses what it returns as it is, so a
// configuration it returns other than base (or nil, which is base)
// verifies no client at all.
// (A chooser that returns base.Clone() made after this call gets the
// verifiers twice, the second time without the client's address, so tofu
// refuses a first use: return base itself, or clones made before.)
// A base without a certificate (nor GetCertificate) is served as the copy
// crypto/tls was given: net/http's ServeTLS(ln, certFile, keyFile) clones
// base and loads the files into its clone. The clients of such a copy are
// verified as well, but without their address and with nothing recorded
// after the handshake, so tofu refuses a first use there (fail closed):
// give base the certificate, or serve on Listen. A VerifyConnection set on
// such a base after this call would replace the verifiers in the copy:
// its handshakes fail instead. With a certificate in base, base's
// certificate is the one served, whatever files ServeTLS is given.
// What the program sets on base after this call (MinVersion, NextProtos,
// Certificates) holds for the connections that follow; not its own
// VerifyConnection, which must be set before (base's is replaced).
// base's ClientCAs check is replaced by the verifiers. A verifier that
// records clients on first contact (tofu) records one only when Confirm is
// called after its handshake; Listen does that itself, and is what to
// serve net/http on (http.Serve(v.Listen(...), handler)). With QUIC
// (tls.QUICServer), do not issue tickets allowing 0-RTT
// (SendSessionTicket with EarlyData, quic-go's Allow0RTT): crypto/tls
// makes a resuming client's early data readable before the verifiers
// decide on it, so a client whose pin was removed since its ticket is
// refused only after its early data arrived.
func (v *Verifiers) HookServerConfig(base *tls.Config) *tls.Config {
	if base.MinVersion < tls.VersionTLS12 {
		base.MinVersion = tls.VersionTLS12
	}
	base.ClientAuth = tls.RequireAnyClientCert
	choose := base.GetConfigForClient
	next := base.VerifyConnection            // the caller's, which base's own is about to replace
	var ours func(tls.ConnectionState) error // base's own, set below
	base.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		if err := v.unstarted(); err != nil {
			return nil, err // no verifiers: every client rejected
		}
		// base as it is now, not as it was when hooked: what the program
		// set on it since (MinVersion, NextProtos, Certificates) holds.
		c := base
		if choose != nil {
			cc, err := choose(hi)
			if err != nil {
				return nil, err
			}
			if cc != nil {
				c = cc
			}
		}
		after := c.VerifyConnection
		if c == base {
			if len(base.Certificates) == 0 && base.GetCertificate == nil {
				// base has no certificate: the configuration crypto/tls
				// was called on does, a copy of base with one added
				// (net/http's ServeTLS loads its files into its clone).
				// Only that copy can serve, so keep it: it carries base's
				// VerifyConnection and ClientAuth, which verify the
				// client without its address and record nothing, so a
				// first use of tofu is refused there (fail closed).
				// Unless the program replaced base's VerifyConnection
				// after this hook: the copy would then verify nothing.
				if !sameFunc(base.VerifyConnection, ours) {
					return nil, errors.New("tlspin: HookServerConfig: the configuration's VerifyConnection was replaced after the hook, and without a certificate in it the configuration served is a copy (net/http's ServeTLS) that the verifiers could not be hooked into: set VerifyConnection before HookServerConfig")
				}
				return nil, nil
			}
			after = next
		}
		c = c.Clone()
		c.GetConfigForClient = nil
		c.ClientAuth = tls.RequireAnyClientCert
		remote := ""
		var pending *pintls.Pending
		if hi.Conn != nil {
			remote = hi.Conn.RemoteAddr().String()
			pending = v.pending.For(hi.Conn)
		}
		ctx := v.ctx
		if hc := hi.Context(); hc != nil {
			ctx = hc
		}
		c.VerifyConnection = v.verifyConnection(ctx, verify.ServerVerifiesClient, remote, "", pending, after)
		return c, nil
	}
	// base verifies too, without the client's address: a program that
	// removes GetConfigForClient after this call, or replaces it with one
	// returning base or nil, still has its clients checked, not any
	// certificate accepted. (What another configuration returned by a
	// chooser set after this call does, nothing here can see.)
	ours = v.verifyConnection(v.context(), verify.ServerVerifiesClient, "", "", nil, next)
	base.VerifyConnection = ours
	return base
}

// sameFunc reports whether f and g are the same function value, or at
// least closures of the same code (Go cannot compare functions further).
func sameFunc(f, g func(tls.ConnectionState) error) bool {
	return f != nil && g != nil && reflect.ValueOf(f).Pointer() == reflect.ValueOf(g).Pointer()
}

// Confirm ends what the verification of a client asked to do after its
// handshake, for conn, a connection made with tls.Server and a
// configuration from ServerConfig or HookServerConfig. Call it once conn's
// handshake has returned, whatever its outcome. If the handshake
// succeeded, the client has proved it holds its key: Confirm records it
// (a tofu pin on first contact) and logs it as accepted. If not, it
// forgets it, since crypto/tls asks the verifiers before it checks that
// proof: a client whose handshake failed is never recorded. A client
// allowed only as a first use that cannot be recorded (another process
// recorded another key for it meanwhile) is rejected after all: Confirm
// returns a *RejectionError, and conn must be closed unused. Listen calls
// Confirm itself. Without Confirm nothing is recorded, so tofu enforces
// nothing: what was kept for it goes after a minute, and the logger is
// warned, once, when a later verification finds it so. net/http gives no
// place to call Confirm: serve on Listen.
//
// What is kept for Confirm is bounded: it goes a minute after the
// verification, or sooner when more than 1,024 clients wait
// for Confirm at once. A client allowed only on condition of its record
// (tofu's first use, no other verifier allowing it with RequireAny) whose
// record went so is rejected by Confirm, failing closed: a
// *RejectionError matching ErrVerifierFailed (it may try again), and
// conn must be closed unused. Confirm called again for conn answers as
// the first call did: a refusal stands. A nil conn is refused with an
// error matching ErrBadArgument, as confirm of ClientConfigForAddr
// refuses one.
func (v *Verifiers) Confirm(ctx context.Context, conn *tls.Conn) error {
	if err := v.unstarted(); err != nil {
		return err
	}
	if conn == nil {
		return badArgument{errors.New("tlspin: Confirm: no connection given: pass the *tls.Conn made with tls.Server and a configuration from ServerConfig or HookServerConfig, once its handshake has returned")}
	}
	raw := conn.NetConn()
	cs := conn.ConnectionState()
	if !cs.HandshakeComplete {
		v.pending.Forget(raw)
		return nil
	}
	err := v.pending.Commit(ctx, raw)
	if errors.Is(err, pintls.ErrDropped) {
		e := &RejectionError{Peer: "client", Require: v.require, failed: true, cause: err,
			msg: fmt.Sprintf("a verifier allowed it only as a first use, to be recorded after its handshake, and what was kept to record it was dropped before Confirm came (%v): nothing was recorded, and it is rejected to fail closed; it may try again", err)}
		if len(cs.PeerCertificates) > 0 {
			e.fingerprints(cs.PeerCertificates[0].Raw)
		}
		// The caller says it, bounded as it bounds its warnings: a flood
		// of verifications can drop many records.
		v.log.Debug("client rejected after its handshake: its first use could not be recorded", "remote", raw.RemoteAddr().String(), "error", err)
		return e
	}
	return committed(err)
}
