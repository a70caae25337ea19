package pintls_test

import (
	"context"
	"errors"
	"net"
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
