package pintls

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/verify"
)

type nopCommitter struct{}

func (nopCommitter) Commit(context.Context, *verify.Request) (*verify.CommitResponse, error) {
	return &verify.CommitResponse{}, nil
}

// TestExpiredIsReported: entries that a minute passed without Commit or
// Forget are reported when they go (a server that never confirms), and
// entries dropped to stay within bounds, or confirmed, are not.
func TestExpiredIsReported(t *testing.T) {
	now := time.Unix(1000, 0)
	reported := 0
	s := &PendingSet{Now: func() time.Time { return now }, Expired: func(n int) { reported += n }}
	set := func() net.Conn {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		s.For(a).Set(nopCommitter{}, &verify.Request{}, 0)
		return a
	}
	confirmed := set()
	set()
	set()
	if err := s.Commit(context.Background(), confirmed); err != nil {
		t.Fatal(err)
	}
	now = now.Add(pendingTTL / 2)
	set()
	if reported != 0 {
		t.Fatalf("reported %d before a minute passed", reported)
	}
	now = now.Add(pendingTTL/2 + time.Second)
	set()
	if reported != 2 {
		t.Errorf("reported %d unconfirmed entries, want the 2 older than a minute", reported)
	}
	if s.Len() != 2 {
		t.Errorf("%d kept, want 2", s.Len())
	}
}

// TestExpiredCountsOnlyCommits: what is reported is clients allowed on
// condition of a record (tofu's first use) that never came; a client that
// only waited for its "accepted" log line (any verifier, at info level)
// was not allowed on such a condition, and a server that does not confirm
// is not warned that first uses went unrecorded because of it.
func TestExpiredCountsOnlyCommits(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  func(*Pending)
		want int
	}{
		{"commit", func(p *Pending) { p.Set(nopCommitter{}, &verify.Request{}, 0) }, 1},
		{"commit and log", func(p *Pending) { p.Set(nopCommitter{}, &verify.Request{}, 0); p.After(func() {}) }, 1},
		{"log only", func(p *Pending) { p.After(func() {}) }, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(1000, 0)
			reported := 0
			s := &PendingSet{Now: func() time.Time { return now }, Expired: func(n int) { reported += n }}
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			tt.set(s.For(a))
			now = now.Add(pendingTTL + time.Second)
			c, d := net.Pipe()
			defer c.Close()
			defer d.Close()
			s.For(c).After(func() {}) // prunes
			if reported != tt.want {
				t.Errorf("reported %d, want %d", reported, tt.want)
			}
			if s.Len() != 1 {
				t.Errorf("%d kept, want 1: the expired entry goes either way", s.Len())
			}
		})
	}
}

// TestExpiredCommitFails: a connection whose pending commit went after a
// minute without Commit was allowed on condition of a record never made:
// its Commit fails with ErrDropped (it used to return nil, and the
// connection was used), and again at every later Commit; the dropped
// connections are remembered for an hour, and MaxDropped of them at most.
func TestExpiredCommitFails(t *testing.T) {
	now := time.Unix(1000, 0)
	s := &PendingSet{Now: func() time.Time { return now }}
	set := func() net.Conn {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		s.For(a).Set(nopCommitter{}, &verify.Request{}, 0)
		return a
	}
	old, forgotten, late := set(), set(), set()
	now = now.Add(pendingTTL + time.Second)
	fresh := set() // prunes
	if err := s.Commit(context.Background(), old); !errors.Is(err, ErrDropped) || !strings.Contains(err.Error(), "minute") {
		t.Errorf("Commit of an expired connection: %v, want ErrDropped saying why", err)
	}
	if err := s.Commit(context.Background(), old); !errors.Is(err, ErrDropped) {
		t.Errorf("second Commit: %v, want ErrDropped again: a caller that tries again must not be told it committed", err)
	}
	s.Forget(forgotten) // its handshake failed: nothing to remember
	if err := s.Commit(context.Background(), forgotten); err != nil {
		t.Errorf("Commit after Forget: %v", err)
	}
	if err := s.Commit(context.Background(), fresh); err != nil {
		t.Errorf("Commit of a fresh connection: %v", err)
	}
	now = now.Add(droppedTTL + time.Second)
	set() // prunes
	if err := s.Commit(context.Background(), late); err != nil {
		t.Errorf("Commit an hour after the drop: %v, want it forgotten", err)
	}
	if n := s.Dropped(); n != 0 {
		t.Errorf("%d dropped connections remembered after an hour", n)
	}
	for range MaxDropped + 10 {
		a, _ := net.Pipe()
		s.For(a).Set(nopCommitter{}, &verify.Request{}, 0)
		now = now.Add(pendingTTL + time.Second)
	}
	if n := s.Dropped(); n > MaxDropped {
		t.Errorf("%d dropped connections remembered, want at most %d", n, MaxDropped)
	}
}

type notRequired struct{ nopCommitter }

func (notRequired) Required() bool { return false }

// TestDroppedButNotRequired: a commit whose committer says the peer's
// allow did not depend on it (another verifier allowed with require any)
// commits nothing once dropped, and its Commit does not fail.
func TestDroppedButNotRequired(t *testing.T) {
	now := time.Unix(1000, 0)
	s := &PendingSet{Now: func() time.Time { return now }}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	s.For(a).Set(notRequired{}, &verify.Request{}, 0)
	now = now.Add(pendingTTL + time.Second)
	c, d := net.Pipe()
	defer c.Close()
	defer d.Close()
	s.For(c).After(func() {}) // prunes
	if err := s.Commit(context.Background(), a); err != nil {
		t.Errorf("Commit: %v", err)
	}
}
