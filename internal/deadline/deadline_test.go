package deadline_test

import (
	"context"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/deadline"
)

// pastDeadline is a context whose deadline has passed while its own timer
// has not yet said so: what a transport that watches the deadline itself
// (gRPC) can see a moment before the context does.
type pastDeadline struct{ context.Context }

func (pastDeadline) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

func TestPassed(t *testing.T) {
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
		if got := deadline.Passed(tc.ctx); got != tc.want {
			t.Errorf("%s: Passed = %v, want %v", tc.name, got, tc.want)
		}
	}
}
