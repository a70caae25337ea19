package tlspin

import (
	"context"
	"net"
	"time"

	"github.com/tlspin/tlspin/core/verify"
)

// WatchPasses is how many rounds of Watch's questions have ended.
func WatchPasses(v *Verifiers) uint64 { return v.watched.Passes() }

// WatchLen is how many connections Watch holds.
func WatchLen(v *Verifiers) int { return v.watched.Len() }

// SetPendingClock makes now the clock of v's pending commits; call it
// before v verifies anything.
func SetPendingClock(v *Verifiers, now func() time.Time) { v.pending.Now = now }

// FloodPending puts n connections that wait for Confirm in v's pending
// set, as n verified clients whose servers have not confirmed yet.
func FloodPending(v *Verifiers, n int) {
	for range n {
		a, _ := net.Pipe()
		v.pending.For(a).Set(nopCommitter{}, &verify.Request{}, 0)
	}
}

type nopCommitter struct{}

func (nopCommitter) Commit(context.Context, *verify.Request) (*verify.CommitResponse, error) {
	return &verify.CommitResponse{}, nil
}

// MaxHandshakeBytes bounds what a Listen listener's handshakes in
// progress have read, together.
const MaxHandshakeBytes = maxHandshakeBytes
