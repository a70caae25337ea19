package rpc

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// pastDeadline is a context whose deadline has passed but whose timer has
// not run yet, as on a busy host.
type pastDeadline struct{ context.Context }

func (pastDeadline) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

// TestClassifyAfterTheDeadline: a plugin's status that arrives once the
// host's deadline has passed is the host's timeout, whether or not the
// timer ending ctx has run, and whatever the plugin said.
func TestClassifyAfterTheDeadline(t *testing.T) {
	c := &call{}
	c.tagged.Store(true)
	c.headers.Store(true)
	c.trailers.Store(true)
	for _, code := range []codes.Code{codes.Unknown, codes.PermissionDenied, codes.DeadlineExceeded} {
		err := c.classify(pastDeadline{context.Background()}, status.Error(code, "too late"))
		var remote *RemoteError
		if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &remote) {
			t.Errorf("%s: err = %v; want the host's context.DeadlineExceeded", code, err)
		}
	}
	if err := c.classify(context.Background(), status.Error(codes.Unknown, "no")); !errors.As(err, new(*RemoteError)) {
		t.Errorf("before any deadline: err = %v; want a *RemoteError", err)
	}
}
