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
	"syscall"
	"time"

	"github.com/tlspin/tlspin/core/verify"
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
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		var re tls.RecordHeaderError
		switch {
		case errors.Is(err, verify.ErrRejected):
			return nil, fmt.Errorf("client: not talking to %s: %w", addr, err)
		case errors.As(err, &re):
			return nil, fmt.Errorf("client: %s does not speak TLS (first bytes %q): %w", addr, re.RecordHeader[:], err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("client: TLS handshake with %s did not finish within %s: %w", addr, timeout, err)
		}
		return nil, fmt.Errorf("client: TLS handshake with %s: %w", addr, err)
	}
	return conn, nil
}

// ErrRefused means the server ended the TLS session with an alert after
// our side of the handshake was done: with TLS 1.3 this is how a server
// rejects our client certificate, and what we sent was not accepted.
var ErrRefused = errors.New("client: server refused the connection")

// Send copies r to conn, then closes the write side so the server sees
// the end of the message, and waits for the server to close (bounded by
// timeout) so that nothing is lost in flight. It returns the bytes sent.
// A server that answers with a TLS alert instead (for example because it
// rejected our client certificate, which TLS 1.3 reports only after the
// client's handshake is done) is an error wrapping ErrRefused.
func Send(ctx context.Context, conn *tls.Conn, r io.Reader, timeout time.Duration) (int64, error) {
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	n, err := io.Copy(conn, r)
	if err != nil {
		return n, refused(conn, fmt.Errorf("client: send: %w", err))
	}
	if err := conn.CloseWrite(); err != nil {
		return n, refused(conn, fmt.Errorf("client: close: %w", err))
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	conn.SetReadDeadline(time.Now().Add(timeout))
	// The server sends nothing; reading until it closes confirms delivery.
	_, err = io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	if err != nil && isAlert(err) {
		return n, fmt.Errorf("%w: %s sent %v (if it requires a client certificate, is --cert one it trusts?)", ErrRefused, conn.RemoteAddr(), err)
	}
	return n, nil
}

// refused explains a write failure by the alert the server sent, if any.
func refused(conn *tls.Conn, err error) error {
	if isAlert(err) {
		return fmt.Errorf("%w: %s sent %w (if it requires a client certificate, is --cert one it trusts?)", ErrRefused, conn.RemoteAddr(), err)
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	var b [1]byte
	if _, rerr := conn.Read(b[:]); rerr != nil && isAlert(rerr) {
		return fmt.Errorf("%w: %s sent %w (if it requires a client certificate, is --cert one it trusts?)", ErrRefused, conn.RemoteAddr(), rerr)
	}
	return err
}

// isAlert reports whether err is a TLS alert received from the peer.
func isAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// ServerName is the TLS server name (SNI) to send when dialling addr:
// override if set, else the host of addr unless it is an IP address.
func ServerName(addr, override string) string {
	if override != "" {
		return override
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil || net.ParseIP(host) != nil {
		return ""
	}
	return host
}
