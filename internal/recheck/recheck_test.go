package recheck

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/wait"
)

// conn is a watched connection whose check the test controls.
type conn struct {
	checks  atomic.Int32
	allowed atomic.Bool
	mu      sync.Mutex
	revoked []error
}

func newConn(allowed bool) *conn {
	c := &conn{}
	c.allowed.Store(allowed)
	return c
}

func (c *conn) check(context.Context) error {
	c.checks.Add(1)
	if c.allowed.Load() {
		return nil
	}
	return errors.New("no longer allowed")
}

func (c *conn) revoke(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.revoked = append(c.revoked, err)
}

func (c *conn) revocations() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.revoked)
}

func newSet(t *testing.T, every time.Duration) *Set {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return New(ctx, every)
}

// settle waits until a pass that began after the call has ended: one
// that checks a probe added now, which is due at once.
func settle(t *testing.T, s *Set) {
	t.Helper()
	var in atomic.Int64
	in.Store(-1)
	remove := s.Add(Conn{Check: func(context.Context) error {
		in.CompareAndSwap(-1, int64(s.passes.Load()))
		return nil
	}, Revoke: func(error) {}})
	defer remove()
	if !wait.Until(5*time.Second, func() bool { n := in.Load(); return n >= 0 && s.passes.Load() > uint64(n) }) {
		t.Fatal("no pass")
	}
}

// TestChangeRevokesWhatIsNoLongerAllowed: a change has every connection
// checked; the one now refused is revoked, once, and no longer watched;
// the one still allowed stays.
func TestChangeRevokesWhatIsNoLongerAllowed(t *testing.T) {
	s := newSet(t, time.Millisecond)
	kept, cut := newConn(true), newConn(true)
	s.Add(Conn{Since: time.Now(), Check: kept.check, Revoke: kept.revoke})
	s.Add(Conn{Since: time.Now(), Check: cut.check, Revoke: cut.revoke})
	cut.allowed.Store(false)
	s.Changed()
	if !wait.Until(5*time.Second, func() bool { return cut.revocations() == 1 }) {
		t.Fatal("the connection no longer allowed was not revoked")
	}
	if kept.revocations() != 0 || kept.checks.Load() == 0 {
		t.Fatalf("the allowed connection: %d checks, %d revocations; want checked and kept", kept.checks.Load(), kept.revocations())
	}
	if s.Len() != 1 {
		t.Fatalf("%d watched after the revocation, want 1", s.Len())
	}
	s.Changed()
	settle(t, s)
	if n := cut.checks.Load(); n != 1 || cut.revocations() != 1 {
		t.Fatalf("the revoked connection was checked %d times and revoked %d after another change, want once each", n, cut.revocations())
	}
}

// TestNoChangeNoCheck: connections decided after the last change are not
// asked again until the next.
func TestNoChangeNoCheck(t *testing.T) {
	s := newSet(t, time.Millisecond)
	s.Changed()
	settle(t, s)
	c := newConn(true)
	s.Add(Conn{Since: time.Now(), Check: c.check, Revoke: c.revoke})
	settle(t, s)
	if n := c.checks.Load(); n != 0 {
		t.Fatalf("checked %d times with no change since its decision", n)
	}
}

// TestChangeDuringTheHandshake: a change that came after the decision
// began, but before the connection was added, is not missed. This is the
// race of a pin removed while a handshake it allowed was finishing.
func TestChangeDuringTheHandshake(t *testing.T) {
	for _, tc := range []struct {
		name      string
		since     func(changed time.Time) time.Time
		wantCheck bool
	}{
		{"decided before the change", func(ch time.Time) time.Time { return ch.Add(-time.Millisecond) }, true},
		{"decision time unknown", func(time.Time) time.Time { return time.Time{} }, true},
		{"decided after the change", func(ch time.Time) time.Time { return ch.Add(time.Millisecond) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSet(t, time.Millisecond)
			s.Changed()
			settle(t, s)
			s.mu.Lock()
			changed := s.changedAt
			s.mu.Unlock()
			c := newConn(false)
			s.Add(Conn{Since: tc.since(changed), Check: c.check, Revoke: c.revoke})
			settle(t, s)
			if got := c.revocations() == 1; got != tc.wantCheck {
				t.Fatalf("revoked: %v, want %v", got, tc.wantCheck)
			}
		})
	}
}

// TestPassesAreBounded: a burst of changes (tofu recording many first
// uses) costs a pass per interval, not one per change.
func TestPassesAreBounded(t *testing.T) {
	s := newSet(t, 200*time.Millisecond)
	c := newConn(true)
	s.Add(Conn{Since: time.Now(), Check: c.check, Revoke: c.revoke})
	start := time.Now()
	for time.Since(start) < 500*time.Millisecond {
		s.Changed()
		time.Sleep(time.Millisecond)
	}
	// Up to 0.5 s of changes, at most one pass per 0.2 s: a first pass
	// at once, then at 0.2, 0.4 and one after the last change.
	settle(t, s)
	if n := c.checks.Load(); n < 2 || n > 5 {
		t.Fatalf("checked %d times in a burst of changes, want 2 to 5", n)
	}
}

// TestRemoved: a connection removed is neither checked nor revoked.
func TestRemoved(t *testing.T) {
	s := newSet(t, time.Millisecond)
	c := newConn(false)
	remove := s.Add(Conn{Since: time.Now(), Check: c.check, Revoke: c.revoke})
	remove()
	remove()
	s.Changed()
	settle(t, s)
	if c.checks.Load() != 0 || c.revocations() != 0 {
		t.Fatalf("removed connection: %d checks, %d revocations", c.checks.Load(), c.revocations())
	}
}

// TestEndRevokesNothing: once the set's context ends (the verifiers
// closing), a check that then fails, as every check of closed verifiers
// does, revokes nothing.
func TestEndRevokesNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := New(ctx, time.Millisecond)
	entered := make(chan struct{})
	var revoked atomic.Bool
	s.Add(Conn{Since: time.Now(), Check: func(ctx context.Context) error {
		close(entered)
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}, Revoke: func(error) { revoked.Store(true) }})
	s.Changed()
	<-entered
	s.Changed() // a pass after the end must not start either
	<-s.stopped
	if revoked.Load() {
		t.Fatal("revoked after the set's end")
	}
}

// TestClosedConnectionsAreDropped: connections whose owner cannot say when
// they close are dropped once closed, at a change or as the set grows,
// neither checked nor revoked: a server that accepts a million short
// connections between two changes must not keep them all.
func TestClosedConnectionsAreDropped(t *testing.T) {
	s := newSet(t, time.Millisecond)
	for i := range 1000 {
		c := newConn(false)
		alive := i == 0 // the first stays open
		s.Add(Conn{Since: time.Now(), Check: c.check, Revoke: func(error) {
			if !alive {
				t.Error("a closed connection revoked")
			}
		}, Alive: func() bool { return alive }})
	}
	if n := s.Len(); n > 2*minPrune+1 {
		t.Fatalf("%d watched, of which 1 open", n)
	}
	s.Changed()
	settle(t, s)
	if n := s.Len(); n != 0 {
		// The open one was revoked (its check fails), the closed dropped.
		t.Fatalf("%d watched after a change", n)
	}
}

// TestHungCheckHoldsUpNoOther: a verifier that hangs until the verify
// timeout on every question must not hold up the questions about the
// other connections: asked one after another, the last of N connections
// would be revoked after N timeouts (minutes, for a pin removed). Each
// check here waits until every connection's check has begun, which only
// checks that run at once ever see; revocations stay one at a time.
func TestHungCheckHoldsUpNoOther(t *testing.T) {
	const n = 8
	s := newSet(t, time.Millisecond)
	var begun atomic.Int32
	all := make(chan struct{})
	var inRevoke atomic.Int32
	revoked := make(chan error, n)
	for range n {
		s.Add(Conn{Since: time.Now(), Check: func(ctx context.Context) error {
			if begun.Add(1) == n {
				close(all)
			}
			select {
			case <-all:
				return errors.New("no longer allowed")
			case <-time.After(5 * time.Second): // the verify timeout
				return errors.New("verifier hung")
			case <-ctx.Done():
				return ctx.Err()
			}
		}, Revoke: func(err error) {
			if inRevoke.Add(1) != 1 {
				t.Error("two revokes at once")
			}
			time.Sleep(time.Millisecond)
			inRevoke.Add(-1)
			revoked <- err
		}})
	}
	start := time.Now()
	s.Changed()
	for range n {
		select {
		case err := <-revoked:
			if err.Error() != "no longer allowed" {
				t.Fatalf("revoked after %v with %v: the checks ran one after another", time.Since(start).Round(time.Millisecond), err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("not revoked")
		}
	}
}

// TestOneQuestionPerKey: the connections of one key (a proxy client's to
// its one target) are asked about once a pass and share the answer; those
// without a key, or of another, are asked apart.
func TestOneQuestionPerKey(t *testing.T) {
	s := newSet(t, time.Millisecond)
	same, other, none := newConn(false), newConn(true), newConn(true)
	revoked := make(chan error, 10)
	for range 5 {
		s.Add(Conn{Since: time.Now(), Key: "target", Check: same.check, Revoke: func(err error) { revoked <- err }})
	}
	s.Add(Conn{Since: time.Now(), Key: "another", Check: other.check, Revoke: other.revoke})
	s.Add(Conn{Since: time.Now(), Check: none.check, Revoke: none.revoke})
	s.Add(Conn{Since: time.Now(), Check: none.check, Revoke: none.revoke})
	s.Changed()
	for range 5 {
		select {
		case <-revoked:
		case <-time.After(10 * time.Second):
			t.Fatal("a connection of the key was not revoked")
		}
	}
	settle(t, s)
	if n := same.checks.Load(); n != 1 {
		t.Fatalf("the question of one key asked %d times for 5 connections, want once", n)
	}
	if n, m := other.checks.Load(), none.checks.Load(); n != 1 || m != 2 {
		t.Fatalf("asked %d times for the other key, %d for two connections without one; want 1 and 2", n, m)
	}
	if s.Len() != 3 {
		t.Fatalf("%d watched, want the 3 allowed", s.Len())
	}
}
