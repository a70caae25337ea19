// Package deadline tells whether a context is over the moment its
// deadline passes, before its own timer has cancelled it (Passed), and
// gives contexts with a deadline whose timer starts only once something
// waits on them (Lazy).
package deadline

import (
	"context"
	"time"
)

// Passed reports whether ctx is over: cancelled, or past its deadline even
// if its timer has not fired yet. gRPC watches a call's deadline with its
// own timer and may give up a moment before the context says so; a caller
// that asks ctx.Err() alone then takes a timeout for another failure.
func Passed(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}
