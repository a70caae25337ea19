package nodeverifier_test

import (
	"context"
	"testing"

	"github.com/tlspin/tlspin/core/verify"
)

// TestWithoutCommit: cnpin has no commit(), so Commit answers UNIMPLEMENTED
// (grpc-js, for a method left out), which the host takes as nothing to
// commit; the plugin keeps answering. A verifier with commit() on
// goplugin.js is tested in tests/wire (TestCommit).
func TestWithoutCommit(t *testing.T) {
	needNode(t)
	p, err := start(t, verify.Options{"cn": {"a"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	req := &verify.Request{PeerChain: [][]byte{selfSigned(t, "a")}, Side: verify.ClientVerifiesServer}
	if _, err := p.Commit(context.Background(), req); err != nil {
		t.Fatalf("Commit to a verifier without commit(): %v; want nothing to commit", err)
	}
	if v, err := p.Verify(context.Background(), req); err != nil || !v.Allow || v.Commit || p.Restarts() != 0 {
		t.Fatalf("after Commit: Verify = %+v, %v, %d restarts", v, err, p.Restarts())
	}
}
