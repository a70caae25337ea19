// Package recheck asks again about the peers of live connections when a
// verifier's policy changes, and revokes those no longer allowed.
//
// A TLS connection is verified once, at its handshake. A tunnel that stays
// open for days would otherwise outlive the removal of its peer's pin: the
// operator edits the allowlist, and the peer they meant to cut off keeps
// its connection. A Set holds the live connections; Changed, called on
// every policy change, has each of them checked again in the background,
// and those whose check fails are revoked (closed by their owner).
//
// Passes are coalesced and at most one starts per Set.Every: a verifier
// that announces a change for every new peer (tofu records each first
// use) costs one pass a second, not one per peer.
package recheck

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultEvery is the default least time between the starts of two passes.
const DefaultEvery = time.Second

// Set is the live connections of one group of verifiers.
type Set struct {
	every time.Duration
	ctx   context.Context
	// wake has a value when a pass is due.
	wake chan struct{}
	// passes counts the passes ended; stopped is closed when the set's
	// goroutine returns (tests).
	passes  atomic.Uint64
	stopped chan struct{}

	mu sync.Mutex
	// gen counts the changes; changedAt is when the last one came.
	gen       uint64
	changedAt time.Time
	entries   map[*entry]struct{}
	// pruneAt is how many entries make Add drop those no longer alive.
	pruneAt int
}

// minPrune is the least pruneAt.
const minPrune = 64

// entry is one live connection.
type entry struct {
	check  func(context.Context) error
	revoke func(error)
	// alive, if set, reports whether the connection is still open.
	alive func() bool
	// seen is the generation the entry was last checked at, or was
	// current at when added; due says it must be checked whatever the
	// generation. Guarded by Set.mu.
	seen uint64
	due  bool
	gone bool
}

// New returns a set whose passes run until ctx ends, at most one starting
// every every (DefaultEvery if not positive).
func New(ctx context.Context, every time.Duration) *Set {
	if every <= 0 {
		every = DefaultEvery
	}
	s := &Set{every: every, ctx: ctx, wake: make(chan struct{}, 1), stopped: make(chan struct{}), entries: map[*entry]struct{}{}}
	go s.loop()
	return s
}

// Add watches a connection whose peer was allowed by a decision that began
// at since: a change after since has it checked in the next pass (the
// zero time: at once). check asks again and returns nil to keep the
// connection; on an error, revoke is called with it, once, and the
// connection is no longer watched. Both are called from the set's own
// goroutines: the checks of a pass run concurrently (up to parallel at
// once), the revokes one at a time; revoke must not block. remove ends
// the watch and may be called more than once; a revoke already under way
// when it is called still runs.
//
// alive, if not nil, reports whether the connection is still open, for an
// owner that cannot tell the set when it closes: a connection no longer
// alive is dropped, neither checked nor revoked. The set asks it of every
// connection whenever it has grown to twice what it held after the last
// such look, so that closed connections cost no more than the open ones.
func (s *Set) Add(since time.Time, check func(context.Context) error, revoke func(error), alive func() bool) (remove func()) {
	e := &entry{check: check, revoke: revoke, alive: alive}
	s.mu.Lock()
	if len(s.entries) >= max(s.pruneAt, minPrune) {
		for o := range s.entries {
			if o.alive != nil && !o.alive() {
				o.gone = true
				delete(s.entries, o)
			}
		}
		s.pruneAt = 2 * len(s.entries)
	}
	e.seen = s.gen
	// Decided before the last change, or when is not known: the decision
	// may be one the change took back.
	due := since.IsZero() || (s.gen > 0 && !s.changedAt.Before(since))
	e.due = due
	s.entries[e] = struct{}{}
	s.mu.Unlock()
	if due {
		s.signal()
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		e.gone = true
		delete(s.entries, e)
	}
}

// Changed says a policy changed: every live connection is checked again.
func (s *Set) Changed() {
	s.mu.Lock()
	s.gen++
	s.changedAt = time.Now()
	s.mu.Unlock()
	s.signal()
}

// Len returns how many connections are watched.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Passes returns how many passes have ended: one that is under way when
// a revoke is called has ended once this is above what it was then.
func (s *Set) Passes() uint64 { return s.passes.Load() }

func (s *Set) signal() {
	select {
	case s.wake <- struct{}{}:
	default: // a pass is due already
	}
}

// loop runs a pass whenever one is due, at most one per s.every.
func (s *Set) loop() {
	defer close(s.stopped)
	var last time.Time
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		}
		if wait := time.Until(last.Add(s.every)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		last = time.Now()
		s.pass()
		s.passes.Add(1)
	}
}

// parallel bounds the checks of a pass that run at once. One after
// another, a verifier that hangs until the verify timeout on every
// question would have the last of N connections asked about after N
// timeouts: a pin removed would keep its connection for minutes. Bounded,
// so that a pass does not put thousands of questions to the plugins at
// once.
const parallel = 32

// pass checks every entry not checked since the last change.
func (s *Set) pass() {
	s.mu.Lock()
	gen := s.gen
	var due []*entry
	for e := range s.entries {
		if e.seen < gen || e.due {
			due = append(due, e)
		}
	}
	s.mu.Unlock()
	var (
		wg   sync.WaitGroup
		slot = make(chan struct{}, parallel)
		// one has the revokes called one at a time, as Add promises.
		one sync.Mutex
	)
	for _, e := range due {
		select {
		case slot <- struct{}{}:
		case <-s.ctx.Done():
		}
		if s.ctx.Err() != nil {
			break // the verifiers are closing: nothing more is asked
		}
		wg.Go(func() {
			defer func() { <-slot }()
			s.checkOne(e, gen, &one)
		})
	}
	wg.Wait()
}

// checkOne checks e, due at generation gen, and revokes it if its check
// fails.
func (s *Set) checkOne(e *entry, gen uint64, one *sync.Mutex) {
	if e.alive != nil && !e.alive() {
		s.mu.Lock()
		e.gone = true
		delete(s.entries, e)
		s.mu.Unlock()
		return
	}
	err := e.check(s.ctx)
	if s.ctx.Err() != nil {
		return // the verifiers are closing: their failures say nothing
	}
	s.mu.Lock()
	if e.gone {
		s.mu.Unlock()
		return
	}
	if err == nil {
		e.seen, e.due = gen, false
		s.mu.Unlock()
		return
	}
	e.gone = true
	delete(s.entries, e)
	s.mu.Unlock()
	one.Lock()
	defer one.Unlock()
	e.revoke(err)
}
