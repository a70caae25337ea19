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
	"crypto/tls"
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
	EventConnect EventKind = "connection"
	EventData    EventKind = "data"
	EventReject  EventKind = "rejection"
	EventClose   EventKind = "close"
)

// Event is one thing that happened on a connection, for --json output.
type Event struct {
	Kind   EventKind
	Conn   uint64
	Remote string
	// Data is one line a client sent, without its newline.
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
// connections finish within the grace period, then closes them. It closes
// ln. It returns nil on a normal stop.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	slots := make(chan struct{}, s.cfg.MaxConns)
	var acceptErr error
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		c, err := ln.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			acceptErr = fmt.Errorf("server: accept: %w", err)
			break
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		s.nextID++
		id := s.nextID
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			s.handle(ctx, id, c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			if s.cfg.Once {
				cancel()
			}
		}()
		if s.cfg.Once {
			// Serve exactly one connection: stop accepting now.
			ln.Close()
			wg.Wait()
			return nil
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.GracePeriod):
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		<-done
	}
	return acceptErr
}

// handle runs one connection: handshake, then read lines until EOF.
func (s *Server) handle(ctx context.Context, id uint64, raw net.Conn) {
	defer raw.Close()
	remote := raw.RemoteAddr().String()
	log := s.cfg.Log.With("conn", id, "remote", remote)
	conn := tls.Server(raw, s.cfg.TLS)
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	err := conn.HandshakeContext(hctx)
	cancel()
	if err != nil {
		reason := handshakeReason(err, hctx)
		log.Warn("client rejected", "reason", reason)
		s.emit(Event{Kind: EventReject, Conn: id, Remote: remote, Reason: reason})
		return
	}
	log.Info("client connected")
	s.emit(Event{Kind: EventConnect, Conn: id, Remote: remote})
	n, err := s.readLines(conn, id, remote)
	reason := ""
	if err != nil {
		reason = err.Error()
		log.Warn("connection ended abnormally", "bytes", n, "error", err)
	} else {
		log.Info("client closed", "bytes", n)
	}
	s.emit(Event{Kind: EventClose, Conn: id, Remote: remote, Bytes: n, Reason: reason})
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

func handshakeReason(err error, ctx context.Context) string {
	if ctx.Err() != nil {
		return "handshake did not finish in time: " + err.Error()
	}
	var re tls.RecordHeaderError
	if errors.As(err, &re) {
		return "client did not speak TLS"
	}
	return err.Error()
}
