package tlspin

import (
	"errors"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/policy"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/launch"
	"github.com/tlspin/tlspin/internal/printable"
)

var (
	// ErrRejected is matched by the error of a handshake whose peer the
	// verifiers rejected by their verdict: the peer is not the one
	// expected. The error is a *RejectionError.
	ErrRejected = errors.New("tlspin: peer rejected")
	// ErrVerifierFailed is matched by the error of a handshake whose peer
	// was rejected because a verifier could not decide (it returned an
	// error or no verdict, crashed, hung past the verify timeout, or
	// answered garbage): tlspin fails closed.
	// Trying again may succeed. The error is a *RejectionError.
	ErrVerifierFailed = errors.New("tlspin: verifier failed")
	// ErrClosed is matched by errors of a closed Verifiers: every
	// handshake through its configurations fails (with ErrVerifierFailed
	// too), as does a first use confirmed after Close (Confirm, the
	// confirm function of ClientConfigForAddr), and Dial and Listen
	// refuse to start.
	ErrClosed = errors.New("tlspin: verifiers closed")
	// ErrBadConfig is matched by errors of Start caused by its arguments: a
	// malformed spec, an unknown verifier, an option the verifier refuses,
	// a bad checksum or one pinned for a verifier not started, a checksums
	// file that cannot be read, a client certificate without its key.
	ErrBadConfig = launch.ErrConfig
	// ErrBadArgument is matched by errors of Dial and Listen caused by
	// their arguments, refused before anything is dialled or bound: a
	// network other than TCP's, an address without a port, a
	// certificate without its private key (Listen). An error of the
	// network itself (a port in use, a refused connection) does not match
	// it: it is a *net.OpError. It is matched too by the refusal of
	// ClientConfigForAddr's confirm function given a connection whose
	// handshake did not complete, or not the one its configuration
	// verified (nothing is recorded), and of Confirm given none; by the
	// error of a second handshake with a ClientConfigForAddr
	// configuration, which verifies one connection only; and by
	// every error of a Verifiers that Start or StartWith did not make
	// (the zero value, nil), whose configurations reject every peer with
	// it.
	ErrBadArgument = errors.New("tlspin: bad argument")
)

// badArgument is err, matched by ErrBadArgument as well, and said as err
// says it.
type badArgument struct{ err error }

func (e badArgument) Error() string   { return e.err.Error() }
func (e badArgument) Unwrap() []error { return []error{ErrBadArgument, e.err} }

// Verdict is what one verifier said about a peer.
type Verdict struct {
	// Verifier is the verifier's name.
	Verifier string
	// Allowed is true if it allowed the peer.
	Allowed bool
	// Reason is the verifier's explanation.
	Reason string
	// Matched names the pin or rule that matched, when Allowed.
	Matched string
	// Err is set when the verifier could not decide (its own error, no
	// verdict, a crash, a timeout, garbage) and was counted as a
	// rejection.
	Err error
}

// failed reports whether the verifier gave no verdict. An error the
// verifier itself returned ("database unreachable", no verdict, an
// exception) is no verdict either: it rejects the peer like a crash, and
// trying again may succeed. Only the host's restart policy tells the two
// apart (host.IsVerifierError).
func (v Verdict) failed() bool {
	return v.Err != nil
}

// RejectionError is the error of a handshake whose peer was rejected. It
// matches ErrRejected when the verdicts rejected the peer, ErrVerifierFailed
// when a verifier that could not decide made the difference (and ErrClosed
// after Close).
type RejectionError struct {
	// Peer is "server" (a client rejected the server it dialled) or
	// "client" (a server rejected a client's certificate).
	Peer string
	// Require is how Verdicts combined.
	Require Require
	// Verdicts holds what each verifier said, in the order started, their
	// text unescaped (see Reason); empty
	// when no verifier was asked (no certificate, or closed), and when
	// Confirm rejects a client whose first use it could no longer record.
	Verdicts []Verdict
	// PeerSHA256 is the SHA-256 of the peer's leaf certificate in
	// lowercase hex, and PeerSPKI the SHA-256 of its public key as
	// sha256//BASE64; both empty when the peer sent no certificate.
	PeerSHA256, PeerSPKI string

	msg    string
	failed bool
	closed bool
	cause  error // what failed besides the verdicts, if anything
}

// Error says which peer was rejected, and Reason.
func (e *RejectionError) Error() string { return "tlspin: " + e.Peer + " rejected: " + e.Reason() }

// Reason says which verifier said what, without the "tlspin: server
// rejected:" of Error. Text a peer or a plugin controls is escaped in it
// (and in Error), as internal/printable does for tlspin's own output:
// control and format characters, and bytes that are not UTF-8, are
// shown as \xHH or \uHHHH. Verdicts keep the reasons as they came.
func (e *RejectionError) Reason() string { return e.msg }

// Failed reports whether the rejection is a fail-closed one: no verdict
// rejected the peer, but a verifier could not decide.
func (e *RejectionError) Failed() bool { return e.failed }

// Is matches ErrRejected or ErrVerifierFailed (see Failed), and ErrClosed.
func (e *RejectionError) Is(target error) bool {
	switch target {
	case ErrRejected:
		return !e.failed
	case ErrVerifierFailed:
		return e.failed
	case ErrClosed:
		return e.closed
	case verify.ErrRejected:
		// tlspin's own packages know every rejection by this.
		return true
	}
	return false
}

// Unwrap returns the failures of the verifiers that could not decide.
func (e *RejectionError) Unwrap() []error {
	var errs []error
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	for _, v := range e.Verdicts {
		if v.Err != nil {
			errs = append(errs, v.Err)
		}
	}
	return errs
}

// rejection builds the error for a policy's rejection of leaf.
func rejection(peer string, leaf []byte, pe *policy.RejectError) *RejectionError {
	// The verdicts' reasons are a plugin's text, and may quote the peer's
	// (the names its certificate is valid for): escaped, since programs
	// log the error as it is.
	e := &RejectionError{Peer: peer, Require: Require(pe.Mode), msg: printable.Escape(pe.Error())}
	e.fingerprints(leaf)
	var rejected, failed int
	for _, o := range pe.Outcomes {
		v := verdictOf(o)
		switch {
		case v.failed():
			failed++
			v.Allowed = false
		case !v.Allowed:
			rejected++
		}
		e.Verdicts = append(e.Verdicts, v)
	}
	// With all, one verdict against the peer settles it whatever the
	// failures; with any, a verifier that failed might have allowed.
	if pe.Mode == policy.Any {
		e.failed = failed > 0
	} else {
		e.failed = rejected == 0 && failed > 0
	}
	return e
}

// verdictOf is what one verifier said.
func verdictOf(o policy.Outcome) Verdict {
	v := Verdict{Verifier: o.Name, Err: o.Err}
	if o.Verdict != nil {
		v.Allowed, v.Reason, v.Matched = o.Verdict.Allow, o.Verdict.Reason, o.Verdict.Matched
	}
	return v
}

// fingerprints fills PeerSHA256 and PeerSPKI from the leaf's DER.
func (e *RejectionError) fingerprints(leaf []byte) {
	if len(leaf) == 0 {
		return
	}
	if d, err := pin.Sum(pin.SHA256, leaf); err == nil {
		e.PeerSHA256, _ = pin.Print(pin.SHA256, d, pin.FormatHex)
	}
	if d, err := pin.Sum(pin.SPKI, leaf); err == nil {
		e.PeerSPKI, _ = pin.Print(pin.SPKI, d, pin.FormatCurl)
	}
}
