// Package server is tlspin's TLS server: it accepts any number of clients
// at once (up to a limit), lets the TLS configuration's verifier decide on
// client certificates, and writes what each client sends to an output, one
// whole line at a time so that concurrent clients never interleave within
// a line. Every connection is bounded in time and memory.
package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Defaults for Config's zero values.
const (
	DefaultMaxConns         = 256
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 2 * time.Minute
	DefaultMaxLine          = 64 << 10
	DefaultGracePeriod      = 5 * time.Second
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
	// EventClose ends a connection that was accepted.
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
	// Reason explains a rejection or an abnormal close.
	Reason string
	// Bytes is the number of bytes received, on close.
	Bytes int64
}

// Config configures a Server.
type Config struct {
	// TLS is the server configuration (see core/pintls.ServerConfig).
	TLS *tls.Config
	// Confirm, if set, is called once a client's handshake has succeeded,
	// with the net.Conn given to tls.Server: it commits what the client's
	// verification asked to record (a TOFU pin on first contact), which
	// must wait until the client has proved its key.
	Confirm func(ctx context.Context, raw net.Conn) error
	// Output receives what clients send, one whole line per write. It is
	// ignored when OnEvent is set.
	Output io.Writer
	// OnEvent, if set, receives every event instead of lines on Output.
	// It is called from many goroutines, one call at a time.
	OnEvent func(Event)
	Log     hclog.Logger
	// MaxConns bounds concurrent connections; others wait in the listen
	// backlog.
	MaxConns int
	// HandshakeTimeout bounds the TLS handshake, verification included.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection that sends nothing for that long.
	IdleTimeout time.Duration
	// MaxLine bounds the memory a connection holds: a longer line is
	// written out in pieces of MaxLine bytes.
	MaxLine int
	// Once serves a single connection, then Serve returns.
	Once bool
	// GracePeriod is how long open connections may finish after ctx ends.
	GracePeriod time.Duration
}

// Server serves one listener.
type Server struct {
	cfg    Config
	outMu  sync.Mutex
	nextID uint64
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
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = DefaultMaxLine
	}
	if cfg.GracePeriod <= 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	return &Server{cfg: cfg}, nil
}

// Serve accepts connections on ln until ctx ends (or, with Once, until one
// connection is done). When ctx ends it stops accepting, lets open
// connections (handshakes included) finish within the grace period, then
// closes them; a line a client had half sent is emitted whole before its
// connection closes. It closes ln. It returns nil on a normal stop.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// hard ends the connections themselves: at the end of the grace period.
	hard, kill := context.WithCancel(context.WithoutCancel(ctx))
	defer kill()
	ctx, stopAccepting := context.WithCancel(ctx)
	defer stopAccepting()
	stopClose := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopClose()

	t := &tracker{conns: map[net.Conn]struct{}{}}
	acceptErr := s.accept(ctx, hard, ln, t)
	ln.Close()

	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return acceptErr
	case <-ctx.Done():
	}
	if n := t.len(); n > 0 {
		s.cfg.Log.Info("stopped accepting; letting open connections finish", "open", n, "grace", s.cfg.GracePeriod)
	}
	grace := time.NewTimer(s.cfg.GracePeriod)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		s.cfg.Log.Warn("grace period over; closing connections", "open", t.len())
		kill()
		t.closeAll()
		<-done
	}
	return acceptErr
}

// tracker knows the open connections.
type tracker struct {
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (t *tracker) add(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.conns[c] = struct{}{}
}

func (t *tracker) remove(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.conns, c)
}

func (t *tracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

func (t *tracker) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		c.Close()
	}
}

// Accept-error backoff, as net/http does for EMFILE and friends.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// accept runs the accept loop until ctx ends, ln fails for good, or (with
// Once) one connection was accepted. Connections run on hard.
func (s *Server) accept(ctx, hard context.Context, ln net.Listener, t *tracker) error {
	slots := make(chan struct{}, s.cfg.MaxConns)
	var delay time.Duration
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		c, err := ln.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("server: accept on %s: %w", ln.Addr(), err)
			}
			// Out of file descriptors, a connection reset before accept:
			// wait and retry rather than stop serving everyone.
			delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
			s.cfg.Log.Warn("accept failed; retrying", "error", err, "retry_in", delay)
			timer := time.NewTimer(delay)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return nil
			}
			continue
		}
		delay = 0
		t.add(c)
		s.nextID++
		id := s.nextID
		t.wg.Go(func() {
			defer func() { <-slots }()
			defer t.remove(c)
			s.handle(hard, id, c)
		})
		if s.cfg.Once {
			return nil
		}
	}
}

// handle runs one connection: handshake, then read lines until EOF.
func (s *Server) handle(ctx context.Context, id uint64, raw net.Conn) {
	defer raw.Close()
	remote := raw.RemoteAddr().String()
	log := s.cfg.Log.With("conn", id, "remote", remote)
	conn := tls.Server(raw, s.cfg.TLS)
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	err := conn.HandshakeContext(hctx)
	timedOut := errors.Is(hctx.Err(), context.DeadlineExceeded)
	cancel()
	sum, spki := fingerprints(conn.ConnectionState().PeerCertificates)
	if err != nil {
		reason := handshakeReason(err, timedOut, ctx.Err() != nil)
		kv := []any{"reason", reason}
		if sum != "" {
			kv = append(kv, "peer_sha256", sum, "peer_spki", spki)
		} else {
			kv = append(kv, "peer_cert", "none")
		}
		log.Warn("client rejected; closed, nothing it sent is printed", kv...)
		s.emit(Event{Kind: EventReject, Conn: id, Remote: remote, Reason: reason, PeerSHA256: sum, PeerSPKI: spki})
		return
	}
	if s.cfg.Confirm != nil {
		if err := s.cfg.Confirm(ctx, raw); err != nil {
			log.Warn("the verifier could not record the client it allowed", "error", err)
		}
	}
	if sum != "" {
		log.Info("client connected", "peer_sha256", sum, "peer_spki", spki)
	} else {
		log.Info("client connected")
	}
	s.emit(Event{Kind: EventConnect, Conn: id, Remote: remote, PeerSHA256: sum, PeerSPKI: spki})
	n, err := s.readLines(conn, id, remote)
	reason := ""
	switch {
	case err != nil && ctx.Err() != nil:
		reason = "closed by the server: shutdown grace period over"
		log.Warn("connection closed at shutdown", "bytes", n)
	case err != nil:
		reason = err.Error()
		log.Warn("connection ended abnormally", "bytes", n, "error", err)
	default:
		log.Info("client closed", "bytes", n)
	}
	s.emit(Event{Kind: EventClose, Conn: id, Remote: remote, Bytes: n, Reason: reason})
}

// fingerprints returns the hex SHA-256 and the SPKI pin of the leaf.
func fingerprints(chain []*x509.Certificate) (sum, spki string) {
	if len(chain) == 0 {
		return "", ""
	}
	c := sha256.Sum256(chain[0].Raw)
	k := sha256.Sum256(chain[0].RawSubjectPublicKeyInfo)
	return hex.EncodeToString(c[:]), "sha256//" + base64.StdEncoding.EncodeToString(k[:])
}

// readLines copies what the client sends to the output, line by line,
// holding at most MaxLine bytes of a line in memory.
func (s *Server) readLines(conn net.Conn, id uint64, remote string) (int64, error) {
	br := bufio.NewReaderSize(conn, 4096)
	var line []byte
	var total int64
	flush := func() {
		s.emit(Event{Kind: EventData, Conn: id, Remote: remote, Data: line})
		line = line[:0]
	}
	for {
		conn.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		chunk, err := br.ReadSlice('\n')
		total += int64(len(chunk))
		if len(chunk) > 0 {
			complete := chunk[len(chunk)-1] == '\n'
			if complete {
				chunk = bytes.TrimSuffix(chunk[:len(chunk)-1], []byte{'\r'})
			}
			for len(line)+len(chunk) > s.cfg.MaxLine {
				room := s.cfg.MaxLine - len(line)
				line = append(line, chunk[:room]...)
				chunk = chunk[room:]
				flush()
			}
			line = append(line, chunk...)
			if complete {
				flush()
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(line) > 0 {
				flush()
			}
			return total, nil
		default:
			if len(line) > 0 {
				flush()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return total, fmt.Errorf("server: idle for %s, closed", s.cfg.IdleTimeout)
			}
			return total, fmt.Errorf("server: read: %w", err)
		}
	}
}

// emit sends an event to OnEvent, or a data line to Output.
func (s *Server) emit(e Event) {
	e.Time = time.Now()
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(e)
		return
	}
	if e.Kind == EventData {
		buf := make([]byte, 0, len(e.Data)+1)
		buf = append(append(buf, e.Data...), '\n')
		s.cfg.Output.Write(buf)
	}
}

// handshakeReason explains a failed handshake without quoting what the
// client sent.
func handshakeReason(err error, timedOut, shutdown bool) string {
	var re tls.RecordHeaderError
	switch {
	case shutdown:
		return "handshake cut short: server shutting down"
	case timedOut:
		return "handshake did not finish within the handshake timeout: " + err.Error()
	case errors.As(err, &re):
		return "client did not speak TLS"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "client closed the connection during the handshake"
	}
	return err.Error()
}
