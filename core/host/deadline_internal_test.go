package host

import (
	"context"
	"testing"
	"time"
)

// pastDeadline is a context whose deadline has passed while its own timer
// has not yet said so: what a transport that watches the deadline itself
// (gRPC) can see a moment before the context does.
type pastDeadline struct{ context.Context }

func (pastDeadline) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

func TestCallerDone(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	later, cancelLater := context.WithTimeout(context.Background(), time.Hour)
	defer cancelLater()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want bool
	}{
		{"no deadline", context.Background(), false},
		{"deadline ahead", later, false},
		{"cancelled", cancelled, true},
		{"deadline passed, not yet reported", pastDeadline{context.Background()}, true},
	} {
		if got := callerDone(tc.ctx); got != tc.want {
			t.Errorf("%s: callerDone = %v, want %v", tc.name, got, tc.want)
		}
	}
}
