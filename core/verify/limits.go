package verify

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// What the host keeps from a verifier plugin is bounded, whatever the
// transport (core/rpc, core/direct): the plugin is another process, and
// nothing it says may grow the host's memory or logs without limit.

// MaxTextLen caps every text the host keeps from a plugin (reasons,
// matched rules, error messages): longer ones are cut and say so.
const MaxTextLen = 4 << 10

// MaxCacheFor bounds how long a plugin may ask the host to cache a verdict.
const MaxCacheFor = 24 * time.Hour

// Truncate returns s cut (on a rune boundary) so that, with a note saying
// how long it was, it is at most MaxTextLen bytes; a text cut once is not
// cut again.
func Truncate(s string) string {
	if len(s) <= MaxTextLen {
		return s
	}
	note := fmt.Sprintf("… [truncated: %d bytes in all]", len(s))
	cut := MaxTextLen - len(note)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + note
}

// CleanVerdict checks a verdict that came from a plugin and returns the
// copy the host may use: a negative cache time is an error (the plugin
// answers garbage), a longer one than MaxCacheFor is cut to it, and Reason
// and Matched are truncated to MaxTextLen.
func CleanVerdict(v *Verdict) (*Verdict, error) {
	if v == nil {
		return nil, errors.New("verify: no verdict")
	}
	if v.CacheFor < 0 {
		return nil, fmt.Errorf("verify: negative cache time %v", v.CacheFor)
	}
	return &Verdict{Allow: v.Allow, Reason: Truncate(v.Reason), Matched: Truncate(v.Matched), CacheFor: min(v.CacheFor, MaxCacheFor), Commit: v.Commit}, nil
}

// MaxRequestSize caps what a request to a plugin may carry (RequestSize):
// the channels to plugins carry a message of 1 MiB at most (core/direct's
// frames, core/rpc's messages), and a request must fit in one with its
// framing. A peer's chain in a handshake is at most 256 KiB (crypto/tls's
// cap on a Certificate message); a chain that Check or tlspin verify is
// given comes from their caller, and may be anything.
const MaxRequestSize = 768 << 10

// RequestSize is what req counts against MaxRequestSize: its
// certificates' and texts' bytes, each with 8 bytes more for its framing
// (a length, a field tag), so that a chain of a million empty
// certificates counts for what it costs to send.
func RequestSize(req *Request) int {
	const framing = 8
	n := len(req.ServerName) + len(req.RemoteAddr) + len(req.ALPN) + 3*framing
	for _, der := range req.PeerChain {
		n += len(der) + framing
	}
	return n
}
