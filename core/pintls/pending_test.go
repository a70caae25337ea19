package pintls_test

import (
	"context"
	"errors"
	"math"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/core/verify"
)

type committer struct {
	n   int
	err error
}

func (c *committer) Commit(context.Context, *verify.Request) (*verify.CommitResponse, error) {
	c.n++
	return &verify.CommitResponse{}, c.err
}

// TestPendingCommitsOnce: what a verification set is committed once, at
// Commit and never before; After runs then too; a nil Pending is inert.
func TestPendingCommitsOnce(t *testing.T) {
	c := &committer{}
	var p pintls.Pending
	after := 0
	p.Set(c, &verify.Request{}, 0)
	p.After(func() { after++ })
	if c.n != 0 || after != 0 {
		t.Fatal("committed before Commit")
	}
	for range 2 {
		if err := p.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if c.n != 1 || after != 1 {
		t.Errorf("committed %d times, after ran %d times; want once each", c.n, after)
	}
	var nilp *pintls.Pending
	nilp.Set(c, &verify.Request{}, 0)
	nilp.After(func() { after++ })
	if err := nilp.Commit(context.Background()); err != nil || c.n != 1 || after != 1 {
		t.Errorf("a nil Pending did something: %v", err)
	}
	failing := &committer{err: errors.New("disk full")}
	var q pintls.Pending
	q.Set(failing, &verify.Request{}, 0)
	if err := q.Commit(context.Background()); err == nil {
		t.Error("a failed commit was not reported")
	}
	if err := q.Commit(context.Background()); err == nil || failing.n != 1 {
		t.Errorf("Commit again after a failure: %v, %d commits; want the same failure, without committing again", err, failing.n)
	}
}

// TestPendingSetKeepsOnlyWhatWasSet: a connection whose verification set
// nothing is not kept; one that did is committed once, by its connection.
func TestPendingSetKeepsOnlyWhatWasSet(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var s pintls.PendingSet
	c := &committer{}
	s.For(a) // nothing set: nothing to commit
	s.For(b).Set(c, &verify.Request{}, 0)
	if err := s.Commit(context.Background(), a); err != nil || c.n != 0 {
		t.Fatalf("committing a's connection: %v, %d commits", err, c.n)
	}
	for range 2 {
		if err := s.Commit(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if c.n != 1 {
		t.Errorf("b committed %d times, want once", c.n)
	}
	var nilSet *pintls.PendingSet
	if err := nilSet.Commit(context.Background(), a); err != nil {
		t.Error(err)
	}
}

// uncomparableConn is a net.Conn that cannot be a map key: it holds a
// slice.
type uncomparableConn struct {
	net.Conn
	_ []byte
}

// nanConn is a net.Conn that equals no connection, itself included.
type nanConn struct {
	net.Conn
	f float64
}

// TestPendingSetRefusesUncomparableConns: a connection that cannot key
// the set's map (it holds a slice, or a NaN, which equals nothing) gets no
// Pending (so nothing is recorded for it, and a verifier whose allow needs
// a record cannot allow), instead of a panic in the server's handshake or
// an entry that could never be found again.
func TestPendingSetRefusesUncomparableConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var s pintls.PendingSet
	for _, conn := range []net.Conn{uncomparableConn{Conn: a}, nanConn{Conn: a, f: math.NaN()}, nil} {
		p := s.For(conn)
		if p != nil {
			t.Fatalf("For(%T) = %v, want nil", conn, p)
		}
		p.Set(&committer{}, &verify.Request{}, 0)
		if s.Len() != 0 {
			t.Fatalf("the set keeps %d entries", s.Len())
		}
		// What a server calls after every handshake (Confirm).
		if err := s.Commit(context.Background(), conn); err != nil {
			t.Fatalf("Commit(%T): %v", conn, err)
		}
		s.Forget(conn)
	}
	if p := s.For(&uncomparableConn{Conn: a}); p == nil {
		t.Error("a pointer to the same type got no Pending")
	}
}

// TestPendingSetForget: a connection whose handshake failed is forgotten
// and never committed.
func TestPendingSetForget(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var s pintls.PendingSet
	c := &committer{}
	s.For(a).Set(c, &verify.Request{}, 0)
	s.Forget(a)
	if err := s.Commit(context.Background(), a); err != nil || c.n != 0 || s.Len() != 0 {
		t.Fatalf("after Forget: commit %v, %d commits, %d kept", err, c.n, s.Len())
	}
}

// TestPendingSetIsBounded is the attack of a client that gets verified
// and then fails its handshake, over and over, against a server that never
// calls Forget: the set keeps at most MaxPending connections and
// MaxPendingBytes of their chains and names, the newest; the Commit of
// one dropped fails. The server name (SNI) a client sends, up to 64 KiB,
// was not counted: 1,024 clients of 1 KiB chains and 60 KiB names held
// 62 MiB where 16 were allowed.
func TestPendingSetIsBounded(t *testing.T) {
	for _, tt := range []struct {
		name      string
		chainSize int
		// nameSize is that of the client's server name (SNI), which
		// crypto/tls takes up to 64 KiB: a client that holds no key
		// has it kept with its chain.
		nameSize int
	}{
		{"many small chains", 1 << 10, 0},
		{"large chains", 200 << 10, 0},
		{"large server names", 1 << 10, 60 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var s pintls.PendingSet
			c := &committer{}
			var conns []net.Conn
			req := func() *verify.Request {
				return &verify.Request{PeerChain: [][]byte{make([]byte, tt.chainSize)}, ServerName: strings.Repeat("a", tt.nameSize)}
			}
			want := min(pintls.MaxPending, pintls.MaxPendingBytes/verify.RequestSize(req()))
			for range pintls.MaxPending + 100 {
				a, b := net.Pipe()
				defer a.Close()
				defer b.Close()
				s.For(a).Set(c, req(), 0)
				conns = append(conns, a)
			}
			if s.Len() != want {
				t.Fatalf("kept %d connections, want %d", s.Len(), want)
			}
			// The newest are kept, the oldest dropped without a commit:
			// its Commit fails, since its peer was allowed on condition
			// of it (it used to return nil, and the peer was served).
			if err := s.Commit(context.Background(), conns[0]); !errors.Is(err, pintls.ErrDropped) || c.n != 0 {
				t.Fatalf("the oldest: %v, %d commits; want it dropped, and ErrDropped", err, c.n)
			}
			if err := s.Commit(context.Background(), conns[len(conns)-1]); err != nil || c.n != 1 {
				t.Fatalf("the newest: %v, %d commits; want it kept", err, c.n)
			}
		})
	}
}

// slowCommitter fails its commits after release is closed, counting them.
type slowCommitter struct {
	n       atomic.Int32
	release chan struct{}
	err     error
}

func (c *slowCommitter) Commit(context.Context, *verify.Request) (*verify.CommitResponse, error) {
	c.n.Add(1)
	<-c.release
	return &verify.CommitResponse{}, c.err
}

// TestPendingSetCommitAgain: a server that calls Commit again for a
// connection, while the first is under way or after it failed, gets the
// first one's failure; it used to get nil, there being nothing left to
// commit, and used a connection whose peer was allowed only on condition
// of that commit. After a commit that succeeded, there is nothing to do.
func TestPendingSetCommitAgain(t *testing.T) {
	for _, fail := range []bool{true, false} {
		var s pintls.PendingSet
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		c := &slowCommitter{release: make(chan struct{})}
		if fail {
			c.err = errors.New("another key recorded meanwhile")
		}
		s.For(a).Set(c, &verify.Request{}, 0)
		errs := make(chan error, 2)
		go func() { errs <- s.Commit(context.Background(), a) }()
		for c.n.Load() == 0 {
			runtime.Gosched()
		}
		go func() { errs <- s.Commit(context.Background(), a) }() // while the first is under way
		close(c.release)
		for range 2 {
			if err := <-errs; (err != nil) != fail {
				t.Errorf("fail %v: concurrent Commit: %v", fail, err)
			}
		}
		if err := s.Commit(context.Background(), a); (err != nil) != fail {
			t.Errorf("fail %v: Commit after the first: %v", fail, err)
		}
		if n := c.n.Load(); n != 1 {
			t.Errorf("fail %v: committed %d times, want once", fail, n)
		}
		s.Forget(a)
		if err := s.Commit(context.Background(), a); err != nil {
			t.Errorf("fail %v: Commit after Forget: %v", fail, err)
		}
	}
}
