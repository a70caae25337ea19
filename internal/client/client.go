// Package client is tlspin's TLS client: it dials, completes the handshake
// (where the verifier decides, from tls.Config.VerifyConnection), and only
// then sends a message.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/abort"
)

// DefaultTimeout bounds dialling plus the handshake.
const DefaultTimeout = 10 * time.Second

// Dial connects to addr and completes the TLS handshake with cfg within
// timeout (DefaultTimeout when 0). A rejection by the verifier wraps
// verify.ErrRejected; nothing has been sent then.
func Dial(ctx context.Context, addr string, cfg *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	start := time.Now()
	raw, err := DialTCP(ctx, addr, timeout)
	if err != nil {
		return nil, err
	}
	return Handshake(ctx, raw, addr, cfg, timeout-time.Since(start))
}

// DialTCP makes the TCP connection of Dial, within timeout (DefaultTimeout
// when 0), so that a caller can dial while its verifiers start and then
// call Handshake.
func DialTCP(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("client: dial %q: connection refused (is the server listening?): %w", addr, err)
		}
		return nil, fmt.Errorf("client: dial %q: %w", addr, err)
	}
	return raw, nil
}

// Handshake completes the TLS handshake of Dial on raw, a connection to
// addr, within timeout; raw is closed on error.
func Handshake(ctx context.Context, raw net.Conn, addr string, cfg *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, max(timeout, 0))
	defer cancel()
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		var re tls.RecordHeaderError
		switch {
		case errors.Is(err, verify.ErrRejected):
			return nil, &rejectedError{addr: addr, err: err}
		case errors.As(err, &re):
			return nil, fmt.Errorf("client: %s does not speak TLS (first bytes %q): %w", addr, re.RecordHeader[:], err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("client: TLS handshake with %s did not finish within %s: %w", addr, timeout.Round(time.Millisecond), err)
		}
		return nil, fmt.Errorf("client: TLS handshake with %s: %w", addr, err)
	}
	// The handshake succeeded and the server proved its key: this is the
	// one place where a decision's side effects belong on the client.
	return conn, nil
}

// rejectedError is a server the verifiers rejected: where, and the
// verifiers' own words (without a library's "tlspin: server rejected:"
// when the rejection offers its Reason alone).
type rejectedError struct {
	addr string
	err  error
}

func (e *rejectedError) Error() string {
	why := e.err.Error()
	var r interface{ Reason() string }
	if errors.As(e.err, &r) {
		why = r.Reason()
	}
	return fmt.Sprintf("client: not talking to %s: %s", e.addr, why)
}

func (e *rejectedError) Unwrap() error { return e.err }

// ErrRefused means the server ended the TLS session with an alert after
// our side of the handshake was done: with TLS 1.3 this is how a server
// rejects our client certificate, and what we sent was not accepted.
var ErrRefused = errors.New("client: server refused the connection")

// DefaultIdleTimeout is how long Send waits for more of the reply.
const DefaultIdleTimeout = 5 * time.Second

// DefaultQuiet is how long, with HalfCloseAuto, the server may send
// nothing after the message before Send closes its write side: a server
// that reads to EOF waits that long more, every time. A server that
// answers a request on loopback does so well within it (a Python ssl
// server in 0.2 ms at the median, 0.5 ms at the 99th percentile, on a
// loaded machine); callers add how long the server took to answer the
// ClientHello (see SendOptions.Quiet), which a distant or busy server
// needs.
const DefaultQuiet = 3 * time.Millisecond

// HalfClose says when Send closes its write side, which sends a TLS
// close_notify alert and a TCP FIN, after the message.
type HalfClose int

const (
	// HalfCloseAlways closes it as soon as the message is sent, so that a
	// server reading to the end of the message (the recipe's) finishes at
	// once. The default.
	HalfCloseAlways HalfClose = iota
	// HalfCloseAuto closes it once the server has sent nothing for the
	// quiet period after the message (or for four after the last of the
	// reply so far), and never once the server has closed. A server that reads to
	// the end of the message (EOF) is told it within the quiet period; one
	// that answers a request and closes without reading further never has
	// an unread close_notify when it closes, which would make its kernel
	// reset the connection and discard the reply in flight.
	HalfCloseAuto
	// HalfCloseNever keeps it open: Send waits for the server to close,
	// or for the idle timeout (like openssl s_client -quiet).
	HalfCloseNever
)

var halfCloseNames = []string{"always", "auto", "never"}

func (h HalfClose) String() string {
	if h >= 0 && int(h) < len(halfCloseNames) {
		return halfCloseNames[h]
	}
	return fmt.Sprintf("HalfClose(%d)", int(h))
}

// ParseHalfClose parses auto, always or never.
func ParseHalfClose(s string) (HalfClose, error) {
	for i, n := range halfCloseNames {
		if s == n {
			return HalfClose(i), nil
		}
	}
	return 0, fmt.Errorf("client: half-close %q: want %s", s, strings.Join(halfCloseNames, ", "))
}

// SendOptions tune Send; the zero value is the default.
type SendOptions struct {
	// Idle: once the message is sent, how long to wait for more of the
	// reply; while sending, how long the server may read none of it.
	// DefaultIdleTimeout when 0.
	Idle time.Duration
	// HalfClose says when to close the write side after the message.
	HalfClose HalfClose
	// Quiet is HalfCloseAuto's quiet period, DefaultQuiet when 0; a
	// caller that knows how long the server takes to answer (the time
	// from the ClientHello to the server's first flight, a round trip and
	// the server's own delay) adds twice that.
	Quiet time.Duration
}

// ErrResetAfterSend means the whole message was written and our write
// side closed, and then the server reset the connection: it closed
// without reading all we sent, at least our close_notify, and its kernel
// discarded whatever reply was still in flight. Whether it read the
// message cannot be told from here: a server that answers and closes
// without reading to the end did, one that reads nothing did not; sending
// it again may deliver it twice.
var ErrResetAfterSend = errors.New("client: the server reset the connection after the whole message was sent")

// ResetAfterSendError is an ErrResetAfterSend: how much of the reply came
// before the reset, and when the write side was closed.
type ResetAfterSendError struct {
	Received  int64
	HalfClose HalfClose
	Err       error // the read's error: ECONNRESET
}

func (e *ResetAfterSendError) Error() string {
	lost := "its reply, if any, was lost"
	if e.Received > 0 {
		lost = fmt.Sprintf("the %d bytes of reply printed may not be all of it", e.Received)
	}
	return fmt.Sprintf("%v: it closed without reading all we sent (at least our close_notify), so whether it read the message is unknown, and %s: %v", ErrResetAfterSend, lost, e.Err)
}

func (e *ResetAfterSendError) Is(target error) bool { return target == ErrResetAfterSend }
func (e *ResetAfterSendError) Unwrap() error        { return e.Err }

// Result is what an exchange moved.
type Result struct {
	// Sent and Received count plaintext bytes.
	Sent, Received int64
	// IdleTimedOut: the server kept the connection open and sent nothing
	// for the idle timeout after the message; the reply may be partial.
	IdleTimedOut bool
	// HalfClosed: our write side was closed (close_notify sent).
	HalfClosed bool
}

// Send copies msg to conn, then closes the write side (when
// opts.HalfClose says) so that the server sees the end of the message,
// and meanwhile copies whatever the server sends to reply (discarded if
// nil), until the server closes or, once the message is sent, sends
// nothing for opts.Idle. A server that keeps the connection open is not
// an error: the result says so. A server that answers with a TLS alert
// instead (for example because it rejected our client certificate, which
// TLS 1.3 reports only after the client's handshake is done) is an error
// wrapping ErrRefused; one that resets the connection once the message
// and our close_notify were sent, an error wrapping ErrResetAfterSend.
// When Send gives up before the whole message is written (ctx is done,
// reading msg or writing to conn fails), it closes conn abortively (see
// abort.Conn), so that the server cannot take part of the message for all of
// it.
func Send(ctx context.Context, conn *tls.Conn, msg io.Reader, reply io.Writer, opts SendOptions) (Result, error) {
	idle := opts.Idle
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	quiet := opts.Quiet
	if quiet <= 0 {
		quiet = DefaultQuiet
	}
	if reply == nil {
		reply = io.Discard
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	var sent atomic.Bool
	type readResult struct {
		n   int64
		err error
	}
	read := make(chan readResult, 1)
	// got is told (without waiting) of every part of the reply.
	got := make(chan struct{}, 1)
	go func() {
		n, err := receive(conn, reply, &sent, idle, got)
		read <- readResult{n, err}
	}()

	var res Result
	var werr error
	var ne net.Error
	type copyResult struct {
		n   int64
		err error
	}
	copied := make(chan copyResult, 1)
	go func() {
		n, err := io.Copy(progressWriter{ctx, conn, idle}, msg)
		copied <- copyResult{n, err}
	}()
	select {
	case r := <-copied:
		res.Sent, werr = r.n, r.err
	case <-ctx.Done():
		// The message may come from a terminal, whose read no deadline
		// interrupts: stop waiting for it (the copy ends with the
		// process, or at its next write, which the deadline fails).
		r := <-read
		res.Received = r.n
		abort.Conn(conn)
		return res, fmt.Errorf("client: %w", context.Cause(ctx))
	}
	if werr != nil {
		// Only part of the message went out: however Send ends, its end
		// must not look like the message's.
		defer abort.Conn(conn)
	}
	sent.Store(true)
	if ctx.Err() == nil {
		conn.SetReadDeadline(time.Now().Add(idle))
	}
	var r readResult
	done := false
	if werr == nil {
		switch opts.HalfClose {
		case HalfCloseAlways:
			werr, res.HalfClosed = conn.CloseWrite(), true
		case HalfCloseAuto:
			r, done, res.HalfClosed, werr = halfCloseWhenQuiet(ctx, conn, read, got, quiet)
		}
	}
	if errors.As(werr, &ne) && ne.Timeout() && ctx.Err() == nil {
		werr = fmt.Errorf("the server read nothing for %s: %w", idle, werr)
	}
	if werr != nil {
		// Why did the write fail? An alert the server sent says.
		conn.SetReadDeadline(time.Now().Add(time.Second))
	}
	if !done {
		r = <-read
	}
	res.Received = r.n
	switch {
	case r.err != nil && isAlert(r.err):
		return res, fmt.Errorf("%w: %s sent %w", ErrRefused, conn.RemoteAddr(), r.err)
	case werr != nil:
		return res, fmt.Errorf("client: send: %w", werr)
	case ctx.Err() != nil:
		return res, fmt.Errorf("client: %w", context.Cause(ctx))
	case errors.As(r.err, &ne) && ne.Timeout():
		res.IdleTimedOut = true
	case res.HalfClosed && errors.Is(r.err, syscall.ECONNRESET):
		return res, &ResetAfterSendError{Received: res.Received, HalfClose: opts.HalfClose, Err: r.err}
	case r.err != nil && !errors.Is(r.err, io.EOF):
		return res, fmt.Errorf("client: reading the reply: %w", r.err)
	}
	return res, nil
}

// afterReply is how many quiet periods Send waits, once the server has
// sent part of a reply, for the rest or for it to close.
const afterReply = 4

// halfCloseWhenQuiet closes conn's write side once the server has sent
// nothing for quiet, unless it closes (or the read fails) first: then
// done is true and r is how the read ended.
func halfCloseWhenQuiet[R any](ctx context.Context, conn *tls.Conn, read <-chan R, got <-chan struct{}, quiet time.Duration) (r R, done, closed bool, err error) {
	timer := time.NewTimer(quiet)
	defer timer.Stop()
	for {
		select {
		case <-got:
			// It answers requests: one that closes after its answer does
			// so at once, but after more work than the wait for the
			// answer had to allow for (such as a write to a log).
			timer.Reset(afterReply * quiet)
		case r = <-read:
			return r, true, false, nil
		case <-timer.C:
			return r, false, true, conn.CloseWrite()
		case <-ctx.Done():
			return r, false, false, nil
		}
	}
}

// progressWriter writes to conn, each write bounded by idle: the message
// goes out as slowly as its source gives it, but a server that reads none
// of it for idle ends the exchange.
type progressWriter struct {
	ctx  context.Context
	conn *tls.Conn
	idle time.Duration
}

func (w progressWriter) Write(p []byte) (int, error) {
	w.conn.SetWriteDeadline(time.Now().Add(w.idle))
	// After the deadline is set: a cancellation that came before it would
	// otherwise be undone.
	if err := w.ctx.Err(); err != nil {
		w.conn.SetWriteDeadline(time.Now())
		return 0, err
	}
	return w.conn.Write(p)
}

// receive copies conn to w until EOF or an error, telling got (without
// waiting) of each part; once sent is true, every read may wait at most
// idle.
func receive(conn *tls.Conn, w io.Writer, sent *atomic.Bool, idle time.Duration, got chan<- struct{}) (int64, error) {
	buf := make([]byte, 16<<10)
	var total int64
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			total += int64(n)
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, fmt.Errorf("writing the reply: %w", werr)
			}
			if sent.Load() {
				conn.SetReadDeadline(time.Now().Add(idle))
			}
			select {
			case got <- struct{}{}:
			default:
			}
		}
		if err != nil {
			return total, err
		}
	}
}

// isAlert reports whether err is a TLS alert received from the peer.
func isAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// ServerName is the TLS server name (SNI) to send when dialling addr:
// override if set, else the host of addr unless it is an IP address. A
// unix socket (unix:/path) has no host name: net.SplitHostPort would take
// "unix" for one.
func ServerName(addr, override string) string {
	if override != "" {
		return override
	}
	if strings.HasPrefix(addr, "unix:") {
		return ""
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil || net.ParseIP(host) != nil {
		return ""
	}
	return host
}
