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

// Limiter decides which occurrences of one warning are written. The zero
// value writes at most one a second. It is safe for concurrent use.
type Limiter struct {
	// Burst is how many are written in each interval; zero: one.
	Burst int
	// PerSource, if not zero, is how many of those from one source (as
	// WarnFrom and LogFrom are given) are written in each interval, within
	// Burst: one source that floods then uses up a PerSource share of the
	// warnings, and it takes Burst/PerSource sources to push another's
	// down.
	PerSource int
	// Every is the interval; zero: a second.
	Every time.Duration
	// Now is time.Now, but for tests.
	Now func() time.Time

	mu         sync.Mutex
	start      time.Time // of the current interval
	count      int       // written in it
	bySource   map[netip.Addr]int
	suppressed uint64
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
		// Only sources written in this interval are held: at most Burst.
		l.start, l.count = now, 0
		clear(l.bySource)
	}
	if l.count >= burst || (l.PerSource > 0 && l.bySource[src] >= l.PerSource) {
		l.suppressed++
		return false, 0
	}
	l.count++
	if l.PerSource > 0 {
		if l.bySource == nil {
			l.bySource = map[netip.Addr]int{}
		}
		l.bySource[src]++
	}
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
