// Package server is tlspin's accept loop and its line-printing TLS server.
//
// Loop accepts connections, admits each within Limits (a budget for
// connections, a smaller one for handshakes, a cap per client IP; when
// full, a connection is closed rather than a new client stalled: the one
// idle the longest of the client address holding the most, a handshake
// first), backs off on accept errors and drains on shutdown; a Handler
// decides what to do with each connection. tlspin serve, the proxy and the
// bench's handshake server are three handlers on it.
//
// Server is the line printer: it lets the TLS configuration's verifier
// decide on client certificates and writes what each client sends to an
// output, one whole line at a time so that concurrent clients never
// interleave within a line. Every connection is bounded in time and memory.
package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/internal/abort"
	"github.com/tlspin/tlspin/internal/netsrc"
	"github.com/tlspin/tlspin/internal/ratelog"
)

// Defaults for Config's zero values, besides the Limits ones.
const (
	DefaultIdleTimeout = 2 * time.Minute
	DefaultMaxLine     = 64 << 10
)

// EventKind names what happened.
type EventKind string

const (
	// EventConnect is a client whose handshake (and verification) passed.
	EventConnect EventKind = "connection"
	// EventData is one line a client sent.
	EventData EventKind = "data"
	// EventReject is a client whose handshake failed or was rejected;
	// nothing it sent is ever emitted.
	EventReject EventKind = "rejection"
	// EventClose ends a connection that was accepted; By is RejectedByUs
	// when the verifiers, asked again, no longer allowed the client
	// (Config.Recheck).
	EventClose EventKind = "close"
)

// Event is one thing that happened on a connection, for --json output.
type Event struct {
	Kind EventKind
	Time time.Time
	Conn uint64
	// Remote is the client's address.
	Remote string
	// PeerSHA256 and PeerSPKI fingerprint the leaf certificate the client
	// presented, if any: lowercase hex SHA-256 of the certificate, and
	// sha256//BASE64 of its public key (curl --pinnedpubkey style).
	PeerSHA256 string
	PeerSPKI   string
	// Data is one line a client sent, without its newline. It is only
	// valid during the OnEvent call.
	Data []byte
	// Unterminated, on data, says that no newline ended Data: a piece of
	// a line longer than MaxLine (all but the last), or the rest of a
	// line when the connection ended or was cut (a reset, the idle
	// timeout, eviction, revocation, shutdown) before its newline. A
	// protocol that ends its messages with a newline can so tell a line
	// cut short from one its client finished.
	Unterminated bool
	// Reason explains a rejection or an abnormal close.
	Reason string
	// By says, on a rejection, which side refused; on a close, that the
	// verifiers revoked the connection.
	By Refusal
	// Bytes is the number of bytes received, on close.
	Bytes int64
}

// Config configures a Server.
type Config struct {
	// TLS is the server configuration (see core/pintls.ServerConfig).
	TLS *tls.Config
	// Confirm, if set, is called once a client's handshake has succeeded:
	// it commits what the client's verification asked to record (a TOFU
	// pin on first contact), which must wait until the client has proved
	// its key.
	Confirm Confirm
	// Output receives what clients send, one whole line per write. It is
	// ignored when OnEvent is set. A write that fails stops the server
	// (see Serve).
	Output io.Writer
	// OnEvent, if set, receives every event instead of lines on Output.
	// It is called from many goroutines, one call at a time. An error it
	// returns stops the server, as a failed write to Output does.
	OnEvent func(Event) error
	Log     hclog.Logger
	// MaxConns, MaxHandshakes, MaxConnsPerIP, HandshakeTimeout,
	// GracePeriod and Once are the loop's Limits; see there.
	MaxConns         int
	MaxHandshakes    int
	MaxConnsPerIP    int
	HandshakeTimeout time.Duration
	GracePeriod      time.Duration
	Once             bool
	// IdleTimeout closes a connection that sends nothing for that long.
	IdleTimeout time.Duration
	// MaxLine bounds the memory a connection holds: a longer line is
	// written out in pieces of MaxLine bytes.
	MaxLine int
	// Recheck, if set, watches each connection from its handshake to its
	// end: when the verifiers, asked again after a policy change, no
	// longer allow the client, the connection is closed and what it
	// sends after is not printed.
	Recheck Recheck
}

// Recheck watches an established connection, given its TLS state, the
// peer's address as its verification was given it, and when that
// verification began (before the handshake): it calls revoke once the
// verifiers, asked again after a policy change, no longer allow the peer
// (tlspin.Verifiers.Watch). stop ends the watch.
type Recheck func(cs tls.ConnectionState, addr string, since time.Time, revoke func(error)) (stop func())

// Watch watches an established connection with r until unwatch is
// called: the context returned ends, its cause a *RevokedError, when the
// verifiers no longer allow the peer, and closeConn, if not nil, runs
// then too. A nil r watches nothing.
func (r Recheck) Watch(ctx context.Context, cs tls.ConnectionState, addr string, since time.Time, closeConn func()) (_ context.Context, unwatch func()) {
	if r == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := r(cs, addr, since, func(err error) {
		cancel(&RevokedError{Err: err})
		if closeConn != nil {
			closeConn()
		}
	})
	return ctx, func() { stop(); cancel(nil) }
}

// RevokedError ends a connection whose peer the verifiers no longer
// allow (Recheck).
type RevokedError struct{ Err error }

func (e *RevokedError) Error() string {
	return "the verifiers no longer allow the peer: " + e.Err.Error()
}

func (e *RevokedError) Unwrap() error { return e.Err }

// OutputError ends Serve when a write to the output (or OnEvent) failed:
// what a client sent could not be printed.
type OutputError struct{ Err error }

func (e *OutputError) Error() string {
	return "server: cannot write to the output, stopped serving: " + e.Err.Error()
}

func (e *OutputError) Unwrap() error { return e.Err }

// Server prints what clients send: the line-printing handler on a Loop.
type Server struct {
	cfg   Config
	loop  *Loop
	outMu sync.Mutex
	// outErr is the first write to the output that failed: nothing is
	// written after it, and Serve returns it. stop ends Serve's context
	// then. Both are guarded by outMu.
	outErr *OutputError
	stop   context.CancelCauseFunc
	// Anyone who can connect may cause a failed handshake, so the
	// warnings are bounded (as the proxy's), each kind apart: rejected
	// those about clients our verifiers rejected, refused those about
	// clients that refused our certificate, failed the other failures,
	// probes clients that closed before their ClientHello. A flood of
	// one kind, the cheap ones above all (bytes that are not TLS), must
	// not send the rejections an operator watches for to debug level.
	// Nor must one source's flood of the same kind: each source has a
	// share of its kind's bound.
	rejected, refused, failed, probes ratelog.Limiter
}

// New checks cfg and returns a server.
func New(cfg Config) (*Server, error) {
	if cfg.TLS == nil {
		return nil, errors.New("server: no TLS configuration")
	}
	if cfg.Output == nil && cfg.OnEvent == nil {
		cfg.Output = io.Discard
	}
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = DefaultMaxLine
	}
	s := &Server{cfg: cfg}
	for _, l := range []*ratelog.Limiter{&s.rejected, &s.refused, &s.failed, &s.probes} {
		l.Burst, l.PerSource = ratelog.PeerBurst, ratelog.PeerPerSource
	}
	s.loop = NewLoop(HandlerFunc(s.handle), Limits{
		MaxConns:         cfg.MaxConns,
		MaxHandshakes:    cfg.MaxHandshakes,
		MaxConnsPerIP:    cfg.MaxConnsPerIP,
		HandshakeTimeout: cfg.HandshakeTimeout,
		GracePeriod:      cfg.GracePeriod,
		Once:             cfg.Once,
	}, cfg.Log)
	return s, nil
}

// Serve accepts connections on ln until ctx ends (or, with Once, until one
// client was served); see Loop.Serve. A line a client had half sent is
// emitted before its connection closes, marked Unterminated. It closes
// ln.
//
// A write to the output that fails stops the server as ctx ending would,
// and Serve returns an *OutputError: the connection whose line (or
// connection event) it was is reset, so that its client does not take the
// close for the end of a stream that was printed, and nothing is written
// after the failed write.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	s.outMu.Lock()
	s.stop = stop
	s.outMu.Unlock()
	err := s.loop.Serve(ctx, ln)
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.outErr != nil {
		return s.outErr
	}
	return err
}

// Stats returns the loop's counters.
func (s *Server) Stats() Stats { return s.loop.Stats() }

// handle runs one connection: handshake, then read lines until EOF.
func (s *Server) handle(ctx context.Context, raw *Conn) {
	id := raw.ID()
	remote, src := raw.RemoteAddr().String(), netsrc.Of(raw.RemoteAddr())
	log := s.cfg.Log.With("conn", id, "remote", remote)
	start := time.Now()
	conn, err := raw.Handshake(ctx, s.cfg.TLS, s.cfg.Confirm)
	sum, spki := Fingerprints(conn.ConnectionState().PeerCertificates)
	if err != nil {
		var he *HandshakeError
		errors.As(err, &he)
		kv := []any{"reason", he.Reason}
		if sum != "" {
			kv = append(kv, "peer_sha256", sum, "peer_spki", spki)
		} else {
			kv = append(kv, "peer_cert", "none")
		}
		switch {
		case he.By == RejectedByUs:
			s.rejected.WarnFrom(log, src, "client rejected by us; closed, nothing it sent is printed", kv...)
		case he.By == RefusedByPeer:
			s.refused.WarnFrom(log, src, "client refused our certificate; closed", kv...)
		case errors.Is(err, ErrClosedEarly):
			s.probes.WarnFrom(log, src, "client closed before its ClientHello was answered; closed", kv...)
		default:
			s.failed.WarnFrom(log, src, "handshake failed, client rejected; closed, nothing it sent is printed", kv...)
		}
		// Should the output fail, the server stops; this connection,
		// rejected, closes as it would have.
		s.emit(Event{Kind: EventReject, Conn: id, Remote: remote, Reason: he.Reason, By: he.By, PeerSHA256: sum, PeerSPKI: spki})
		return
	}
	if sum != "" {
		log.Info("client connected", "peer_sha256", sum, "peer_spki", spki)
	} else {
		log.Info("client connected")
	}
	if err := s.emit(Event{Kind: EventConnect, Conn: id, Remote: remote, PeerSHA256: sum, PeerSPKI: spki}); err != nil {
		unprinted(log, raw, 0)
		return
	}
	ctx, unwatch := s.cfg.Recheck.Watch(ctx, conn.ConnectionState(), remote, start, func() {
		// The read under way ends; nothing more is printed, and the
		// client sees a reset, not a clean end.
		abort.Conn(raw)
	})
	defer unwatch()
	n, err := s.readLines(conn, id, remote)
	reason := ""
	var revoked *RevokedError
	var output *OutputError
	switch cause := context.Cause(ctx); {
	case errors.As(err, &output):
		unprinted(log, raw, n)
		return
	case err != nil && errors.As(cause, &revoked):
		reason = cause.Error()
		kv := []any{"bytes", n, "reason", reason}
		if spki != "" {
			kv = append(kv, "peer_spki", spki)
		}
		log.Warn("client closed: asked again after a policy change, the verifiers no longer allow it", kv...)
		s.emit(Event{Kind: EventClose, Conn: id, Remote: remote, Bytes: n, Reason: reason, By: RejectedByUs})
		return
	case err != nil && cause != nil:
		reason = cause.Error()
		log.Warn("connection closed by the server", "bytes", n, "reason", reason)
	case err != nil:
		reason = err.Error()
		log.Warn("connection ended abnormally", "bytes", n, "error", err)
	default:
		log.Info("client closed", "bytes", n)
	}
	// Every line of the connection was printed: should the close event
	// fail, the server stops, but the client's close stays clean.
	s.emit(Event{Kind: EventClose, Conn: id, Remote: remote, Bytes: n, Reason: reason})
}

// unprinted resets the connection of a line (or connection event) the
// output failed to take.
func unprinted(log hclog.Logger, raw *Conn, n int64) {
	log.Warn("connection reset: what the client sent could not be printed", "bytes", n)
	abort.Conn(raw)
}

// readLines copies what the client sends to the output, line by line,
// holding at most MaxLine bytes of a line in memory. It stops at the
// first line the output fails to take, with an *OutputError.
func (s *Server) readLines(conn net.Conn, id uint64, remote string) (int64, error) {
	br := bufio.NewReaderSize(conn, 4096)
	var line []byte
	var total int64
	// flush emits line; ended says a newline ended it, and a line
	// emitted otherwise is marked, so that a cut never passes for a line
	// the client finished.
	flush := func(ended bool) error {
		err := s.emit(Event{Kind: EventData, Conn: id, Remote: remote, Data: line, Unterminated: !ended})
		line = line[:0]
		return err
	}
	for {
		// The write deadline too: a TLS 1.3 client asking for key updates
		// makes crypto/tls write its answers from inside Read, and one
		// that does not read them would block that write, and the
		// connection, for ever.
		deadline := time.Now().Add(s.cfg.IdleTimeout)
		conn.SetDeadline(deadline)
		chunk, err := br.ReadSlice('\n')
		total += int64(len(chunk))
		if len(chunk) > 0 {
			complete := chunk[len(chunk)-1] == '\n'
			if complete {
				// A "\r" before the "\n" goes with it, even when the
				// read buffer ended between the two.
				chunk = chunk[:len(chunk)-1]
				if len(chunk) == 0 && bytes.HasSuffix(line, []byte{'\r'}) {
					line = line[:len(line)-1]
				}
				chunk = bytes.TrimSuffix(chunk, []byte{'\r'})
			}
			for len(line)+len(chunk) > s.cfg.MaxLine {
				room := s.cfg.MaxLine - len(line)
				line = append(line, chunk[:room]...)
				chunk = chunk[room:]
				if err := flush(false); err != nil {
					return total, err
				}
			}
			line = append(line, chunk...)
			if complete {
				if err := flush(true); err != nil {
					return total, err
				}
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(line) > 0 {
				return total, flush(false)
			}
			return total, nil
		default:
			if len(line) > 0 {
				if err := flush(false); err != nil {
					return total, err
				}
			}
			// A read that fails once its deadline has passed is the idle
			// timeout, whatever crypto/tls made of a key update's answer
			// that the deadline cut short.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || !time.Now().Before(deadline) {
				return total, fmt.Errorf("server: idle for %s, closed", s.cfg.IdleTimeout)
			}
			return total, fmt.Errorf("server: read: %w", err)
		}
	}
}

// emit sends an event to OnEvent, or a data line to Output. The first
// that fails stops the server; emit then writes nothing more and returns
// that *OutputError.
func (s *Server) emit(e Event) error {
	e.Time = time.Now()
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.outErr != nil {
		return s.outErr
	}
	var err error
	if s.cfg.OnEvent != nil {
		err = s.cfg.OnEvent(e)
	} else if e.Kind == EventData {
		buf := make([]byte, 0, len(e.Data)+1)
		buf = append(append(buf, e.Data...), '\n')
		_, err = s.cfg.Output.Write(buf)
	}
	if err == nil {
		return nil
	}
	s.outErr = &OutputError{Err: err}
	s.cfg.Log.Error("cannot write to the output: stopping, nothing more is printed", "error", err)
	if s.stop != nil {
		s.stop(s.outErr)
	}
	return s.outErr
}
