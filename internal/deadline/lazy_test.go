package deadline_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/deadline"
)

// withDeadline makes a context that ends at d or with parent.
type withDeadline func(parent context.Context, d time.Time) (context.Context, context.CancelFunc)

// kinds are the contexts every case holds Lazy to: as the standard one.
var kinds = []struct {
	name string
	make withDeadline
}{
	{"context.WithDeadline", context.WithDeadline},
	{"deadline.Lazy", deadline.Lazy},
}

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ends waits up to 10 s for ctx's Done and says whether it came.
func ends(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

func TestLazyEndsAsWithDeadline(t *testing.T) {
	const soon = 30 * time.Millisecond
	tests := []struct {
		name string
		// run drives a context made by mk and returns what it saw end it.
		run  func(t *testing.T, mk withDeadline) error
		want error
	}{
		{"the deadline passes, nothing waits", func(t *testing.T, mk withDeadline) error {
			ctx, cancel := mk(context.Background(), time.Now().Add(soon))
			defer cancel()
			if err := ctx.Err(); err != nil {
				t.Errorf("Err before the deadline = %v", err)
			}
			time.Sleep(2 * soon) // past the deadline: what Err says then is the test
			return ctx.Err()
		}, context.DeadlineExceeded},
		{"the deadline passes while Done is waited on", func(t *testing.T, mk withDeadline) error {
			ctx, cancel := mk(context.Background(), time.Now().Add(soon))
			defer cancel()
			if !ends(ctx) {
				t.Fatal("Done not closed 10 s after the deadline")
			}
			return ctx.Err()
		}, context.DeadlineExceeded},
		{"past at once", func(t *testing.T, mk withDeadline) error {
			ctx, cancel := mk(context.Background(), time.Now().Add(-time.Second))
			defer cancel()
			if !closed(ctx.Done()) {
				t.Error("Done not closed for a deadline already past")
			}
			return ctx.Err()
		}, context.DeadlineExceeded},
		{"the parent is cancelled, nothing waits", func(t *testing.T, mk withDeadline) error {
			parent, cancelParent := context.WithCancel(context.Background())
			ctx, cancel := mk(parent, time.Now().Add(time.Hour))
			defer cancel()
			cancelParent()
			return ctx.Err()
		}, context.Canceled},
		{"the parent is cancelled while Done is waited on", func(t *testing.T, mk withDeadline) error {
			parent, cancelParent := context.WithCancel(context.Background())
			ctx, cancel := mk(parent, time.Now().Add(time.Hour))
			defer cancel()
			done := ctx.Done()
			if closed(done) {
				t.Error("Done closed before anything ended it")
			}
			cancelParent()
			if !ends(ctx) {
				t.Fatal("Done not closed 10 s after the parent was cancelled")
			}
			return ctx.Err()
		}, context.Canceled},
		{"the parent's earlier deadline", func(t *testing.T, mk withDeadline) error {
			parent, cancelParent := context.WithTimeout(context.Background(), soon)
			defer cancelParent()
			pd, _ := parent.Deadline()
			ctx, cancel := mk(parent, time.Now().Add(time.Hour))
			defer cancel()
			if d, ok := ctx.Deadline(); !ok || !d.Equal(pd) {
				t.Errorf("Deadline = %v, %v; want the parent's, %v", d, ok, pd)
			}
			if !ends(ctx) {
				t.Fatal("Done not closed 10 s after the parent's deadline")
			}
			return ctx.Err()
		}, context.DeadlineExceeded},
		{"cancelled, then the deadline passes", func(t *testing.T, mk withDeadline) error {
			ctx, cancel := mk(context.Background(), time.Now().Add(soon))
			cancel()
			if !closed(ctx.Done()) {
				t.Error("Done not closed once cancelled")
			}
			time.Sleep(2 * soon) // what ended it first stays what ended it
			return ctx.Err()
		}, context.Canceled},
		{"a child cancelled with it", func(t *testing.T, mk withDeadline) error {
			ctx, cancel := mk(context.Background(), time.Now().Add(soon))
			defer cancel()
			child, cancelChild := context.WithCancel(ctx)
			defer cancelChild()
			if !ends(child) {
				t.Fatal("the child's Done not closed 10 s after the deadline")
			}
			return child.Err()
		}, context.DeadlineExceeded},
		{"its cause", func(t *testing.T, mk withDeadline) error {
			parent, cancelParent := context.WithCancelCause(context.Background())
			defer cancelParent(nil)
			ctx, cancel := mk(parent, time.Now().Add(-time.Second))
			defer cancel()
			return context.Cause(ctx)
		}, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		for _, k := range kinds {
			t.Run(tc.name+"/"+k.name, func(t *testing.T) {
				t.Parallel()
				if got := tc.run(t, k.make); !errors.Is(got, tc.want) {
					t.Errorf("ended by %v, want %v", got, tc.want)
				}
			})
		}
	}
}

// TestLazyValues: a lazy context gives its parent's values.
func TestLazyValues(t *testing.T) {
	type key struct{}
	ctx, cancel := deadline.Lazy(context.WithValue(context.Background(), key{}, "v"), time.Now().Add(time.Hour))
	defer cancel()
	if got := ctx.Value(key{}); got != "v" {
		t.Errorf("Value = %v, want the parent's v", got)
	}
}

// TestLazyConcurrent: Done, Err and the cancel func from many goroutines
// at once (run with -race).
func TestLazyConcurrent(t *testing.T) {
	for range 50 {
		ctx, cancel := deadline.Lazy(context.Background(), time.Now().Add(time.Millisecond))
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				switch i % 3 {
				case 0:
					<-ctx.Done()
				case 1:
					for ctx.Err() == nil {
						time.Sleep(100 * time.Microsecond)
					}
				default:
					cancel()
				}
			})
		}
		wg.Wait()
		if err := ctx.Err(); err == nil || !closed(ctx.Done()) {
			t.Fatalf("ended with %v, Done closed %v", err, closed(ctx.Done()))
		}
	}
}
