// Package ratelog bounds how often a warning that anyone who can connect
// may cause is written: at most a few per interval, the next one counting
// those left out. A client that keeps failing must not flood the log, nor,
// with a bound per source, push the warnings about other clients down.
package ratelog

import (
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// PeerBurst and PeerPerSource are the bounds serve, the proxy and the
// library's Listen put on each kind of warning that peers may cause
// (failed handshakes, refused connections): ten a second, of which one
// source (netsrc.Of) may have three in a row, then one a second.
const (
	PeerBurst     = 10
	PeerPerSource = 3
)

// Limiter decides which occurrences of one warning are written. The zero
// value writes at most one a second. It is safe for concurrent use.
type Limiter struct {
	// Burst is how many are written in each interval; zero: one.
	Burst int
	// PerSource, if not zero, bounds those from one source (as WarnFrom
	// and LogFrom are given), within Burst: a source may have PerSource
	// written in a row, then one an interval (a bucket of PerSource
	// tokens, one back each interval). A few failures in a row (a user
	// trying clients by hand) are all warned about, and one source that
	// floods uses up one warning an interval, not the others': it takes
	// Burst sources flooding at once to push another's down (Burst /
	// PerSource in a flood's first interval).
	PerSource int
	// Every is the interval; zero: a second.
	Every time.Duration
	// Now is time.Now, but for tests.
	Now func() time.Time

	mu         sync.Mutex
	start      time.Time // of the current interval
	count      int       // written in it
	bySource   map[netip.Addr]bucket
	suppressed uint64
}

// bucket is what a source may still have written: tokens, as of at.
type bucket struct {
	tokens int
	at     time.Time
}

// Warn writes msg and its key/value pairs to log at warn level if Allow
// does, with how many were left out since as "suppressed"; at debug level
// otherwise.
func (l *Limiter) Warn(log hclog.Logger, msg string, kv ...any) {
	l.Log(log, hclog.Warn, msg, kv...)
}

// Log is Warn at another level.
func (l *Limiter) Log(log hclog.Logger, level hclog.Level, msg string, kv ...any) {
	l.LogFrom(log, level, netip.Addr{}, msg, kv...)
}

// WarnFrom is Warn for an occurrence that src caused (see netsrc.Of).
func (l *Limiter) WarnFrom(log hclog.Logger, src netip.Addr, msg string, kv ...any) {
	l.LogFrom(log, hclog.Warn, src, msg, kv...)
}

// LogFrom is WarnFrom at another level.
func (l *Limiter) LogFrom(log hclog.Logger, level hclog.Level, src netip.Addr, msg string, kv ...any) {
	ok, suppressed := l.AllowFrom(src)
	if !ok {
		log.Debug(msg, kv...)
		return
	}
	if suppressed > 0 {
		kv = append(kv, "suppressed", suppressed)
	}
	log.Log(level, msg, kv...)
}

// Allow reports whether to write this occurrence at warn level and, if
// so, how many were left out since the last one written. An occurrence
// left out is for the debug level.
func (l *Limiter) Allow() (ok bool, suppressed uint64) {
	return l.AllowFrom(netip.Addr{})
}

// AllowFrom is Allow for an occurrence that src caused.
func (l *Limiter) AllowFrom(src netip.Addr) (ok bool, suppressed uint64) {
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	every, burst := l.Every, l.Burst
	if every == 0 {
		every = time.Second
	}
	if burst == 0 {
		burst = 1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.start.IsZero() || now.Sub(l.start) >= every {
		l.start, l.count = now, 0
		// A source whose bucket has filled again is as one never seen:
		// only those written lately are held, at most PerSource
		// intervals' worth of Burst.
		for s, b := range l.bySource {
			if b.refilled(now, every, l.PerSource).tokens == l.PerSource {
				delete(l.bySource, s)
			}
		}
	}
	var b bucket
	if l.PerSource > 0 {
		b = bucket{tokens: l.PerSource, at: now}
		if held, ok := l.bySource[src]; ok {
			b = held.refilled(now, every, l.PerSource)
		}
	}
	if l.count >= burst || (l.PerSource > 0 && b.tokens == 0) {
		l.suppressed++
		return false, 0
	}
	l.count++
	if l.PerSource > 0 {
		if l.bySource == nil {
			l.bySource = map[netip.Addr]bucket{}
		}
		b.tokens--
		l.bySource[src] = b
	}
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// refilled is b with a token back for each interval since b.at, up to
// max; at moves on by the intervals counted.
func (b bucket) refilled(now time.Time, every time.Duration, max int) bucket {
	n := int(now.Sub(b.at) / every)
	if n <= 0 {
		return b
	}
	if b.tokens+n >= max {
		return bucket{tokens: max, at: now}
	}
	return bucket{tokens: b.tokens + n, at: b.at.Add(time.Duration(n) * every)}
}
