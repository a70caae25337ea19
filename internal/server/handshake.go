package server

import (
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
	"syscall"

	"github.com/tlspin/tlspin/core/verify"
)

// Refusal says which side ended a failed handshake.
type Refusal string

const (
	// RejectedByUs: our verifier rejected the client's certificate.
	RejectedByUs Refusal = "rejected"
	// RefusedByPeer: the client sent an alert, typically because it does
	// not trust our certificate.
	RefusedByPeer Refusal = "refused"
	// HandshakeFailed: anything else (not TLS, closed, timed out, a
	// protocol error).
	HandshakeFailed Refusal = "failed"
)

// HandshakeError is a failed server handshake.
type HandshakeError struct {
	By Refusal
	// Reason explains the failure in a line for the log. It may quote
	// crypto/tls's or a verifier's error, and so text the client chose (a
	// protocol name it offered, its certificate's subject): log it as a
	// value, which the logger escapes, and never decide on it (By and
	// the errors Err matches say what happened).
	Reason string
	Err    error
}

func (e *HandshakeError) Error() string { return e.Reason }
func (e *HandshakeError) Unwrap() error { return e.Err }

// noClientCert is the text of crypto/tls's error (it has no type) when a
// client sends no certificate to a server that requires one.
const noClientCert = "tls: client didn't provide a certificate"

// isNoClientCert reports whether err, a handshake's own error, is
// crypto/tls's for a client that sent no certificate: that text, whole,
// and wrapping nothing, as crypto/tls returns it (errors.New, from
// processCertsFromClient, unwrapped by Conn.Handshake over TCP). A text
// that merely holds it is not it: a peer can put it into the error of a
// handshake that failed otherwise (an ALPN protocol it offers, which
// crypto/tls quotes; its unix socket's address, which a net error names;
// its certificate, which a commit error may quote).
func isNoClientCert(err error) bool {
	return err != nil && errors.Unwrap(err) == nil && err.Error() == noClientCert
}

// ErrNoCertificate is matched by the handshake error of a client that
// sent no certificate where mutual TLS requires one: rejected by us, but
// no verifier was asked.
var ErrNoCertificate = errors.New("server: client sent no certificate")

// ErrClosedEarly is matched by the handshake error of a client that closed
// the connection before the server answered any ClientHello: it may have
// sent nothing (a port scan, a health check) or part of one.
var ErrClosedEarly = errors.New("server: client closed the connection before a ClientHello was answered")

// classify turns a handshake error into a *HandshakeError; cause is why
// the loop closed the connection, if it did; unnegotiated, that no
// ClientHello was answered (no version agreed); noCert, that err is
// crypto/tls's own for a client that sent no certificate (isNoClientCert
// of the handshake's error: nothing else, a Confirm's error included, is).
func classify(err, cause error, unnegotiated, noCert bool) *HandshakeError {
	he := &HandshakeError{By: HandshakeFailed, Err: err}
	var re tls.RecordHeaderError
	var op *net.OpError
	switch {
	case errors.Is(cause, ErrShutdown):
		he.Reason = "handshake cut short: server shutting down"
	case errors.Is(cause, ErrHandshakeTimeout), errors.Is(cause, ErrEvicted), errors.Is(cause, ErrOnceServed):
		he.Reason = cause.Error()
		he.Err = cause
	case errors.Is(err, verify.ErrRejected):
		// Before the deadline below: a verifier that gave no verdict within
		// the verify timeout rejects the client with an error that wraps
		// context.DeadlineExceeded, and it is the verifier, not the
		// handshake timeout, that the operator must hear of.
		he.By, he.Reason = RejectedByUs, "we rejected the client: "+err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		he.Reason = ErrHandshakeTimeout.Error()
	case noCert:
		he.By, he.Reason = RejectedByUs, "we rejected the client: it sent no certificate, and mutual TLS requires one"
		he.Err = fmt.Errorf("%w: %w", ErrNoCertificate, err)
	case errors.As(err, &op) && op.Op == "remote error":
		// The alert's text is crypto/tls's name for the alert code.
		he.By, he.Reason = RefusedByPeer, "the client refused the handshake (alert: "+op.Err.Error()+"); does it trust our certificate?"
	case errors.As(err, &re):
		he.Reason = "client did not speak TLS"
	case unnegotiated && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		// A port scanner, a health check, or tlspin send that stopped
		// before its ClientHello (an external verifier refused its
		// options).
		he.Reason, he.Err = "client closed the connection before a ClientHello was answered", fmt.Errorf("%w: %w", ErrClosedEarly, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		he.Reason = "client closed the connection during the handshake"
	default:
		he.Reason = err.Error()
	}
	return he
}

// Fingerprints returns the hex SHA-256 of the leaf certificate and the
// SPKI pin of its key (sha256//BASE64), or empty strings without one.
func Fingerprints(chain []*x509.Certificate) (sum, spki string) {
	if len(chain) == 0 {
		return "", ""
	}
	c := sha256.Sum256(chain[0].Raw)
	k := sha256.Sum256(chain[0].RawSubjectPublicKeyInfo)
	return hex.EncodeToString(c[:]), "sha256//" + base64.StdEncoding.EncodeToString(k[:])
}
