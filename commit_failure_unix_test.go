//go:build unix

package tlspin_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/syncbuf"
)

// TestCommitThatTimesOutIsAFailure: a first use whose record cannot be
// made in time (another process holds the store's lock past the verify
// timeout) rejects the server to fail closed, as a verifier that timed
// out deciding would: ErrVerifierFailed (the CLI's exit 4, "trying again
// may succeed"), not ErrRejected (exit 3, "the peer is not the one
// expected"), which a script takes for a changed key.
func TestCommitThatTimesOutIsAFailure(t *testing.T) {
	srv := newIdentity("server")
	addr := tlsServer(t, srv)
	pins := filepath.Join(t.TempDir(), "known_pins")
	e2e.HoldTofuLock(t, pins)
	v := start(t, []string{"tofu:file=" + pins}, tlspin.WithVerifyTimeout(time.Second))
	c, err := v.Dial(context.Background(), "tcp", addr)
	if err == nil {
		c.Close()
		t.Fatal("a first use that could not be recorded was allowed")
	}
	if !errors.Is(err, tlspin.ErrVerifierFailed) || errors.Is(err, tlspin.ErrRejected) {
		t.Errorf("Dial: %v\nwant ErrVerifierFailed, not ErrRejected: nothing said the server is not the one expected", err)
	}
	var re *tlspin.RejectionError
	if !errors.As(err, &re) || !re.Failed() {
		t.Errorf("Dial: %#v, want a *RejectionError that says a verifier failed", err)
	}
}

// TestFailedRecordAnotherAllows: with RequireAny, a first use tofu could
// not record (its store's lock held past the verify timeout) is no
// rejection when spkipin allows the server; the "verified" line then
// names spkipin only, not tofu's "recorded once the handshake succeeds",
// which did not happen.
func TestFailedRecordAnotherAllows(t *testing.T) {
	srv := newIdentity("server")
	addr := tlsServer(t, srv)
	pins := filepath.Join(t.TempDir(), "known_pins")
	e2e.HoldTofuLock(t, pins)
	logs := &syncbuf.Buffer{}
	v := start(t, []string{"tofu:file=" + pins, "spkipin:pin=" + srv.spki}, tlspin.WithRequire(tlspin.RequireAny),
		tlspin.WithVerifyTimeout(time.Second), tlspin.WithLogger(hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})))
	c, err := v.Dial(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("Dial: %v; spkipin allows the server", err)
	}
	c.Close()
	var verified string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "verified the server") {
			verified = l
		}
	}
	if !strings.Contains(verified, "spkipin=") || strings.Contains(verified, "tofu=") {
		t.Errorf("the verified line names %q; want spkipin and not tofu, whose record failed:\n%s", verified, logs.String())
	}
	if !strings.Contains(logs.String(), "could not record the server the verifiers allowed; another verifier allows it") {
		t.Errorf("no warning that tofu could not record:\n%s", logs.String())
	}
}
