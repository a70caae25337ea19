package pintls

import (
	"context"
	"net"
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
	s := &PendingSet{now: func() time.Time { return now }, Expired: func(n int) { reported += n }}
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
