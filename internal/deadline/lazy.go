package deadline

import (
	"context"
	"sync"
	"time"
)

// Lazy returns a context that ends at d, or when parent ends, as
// context.WithDeadline's does, but that starts no timer and registers
// nothing with parent until something waits on it (Done). A call whose
// code only asks Err, or never asks, pays for neither. tlspin-builtins
// gives each call such a context, and no built-in verifier waits on it in
// Verify: a timer made and stopped for every call cost the plugin about
// 0.7 µs of CPU a call on an idle machine and about 2 µs under load
// (docs/performance.md, "Ninth round").
//
// Unlike a context of the context package, its cause (context.Cause) is
// its Err, and a context derived from it that is cancelled with it (by
// context.WithCancel and the like) costs a goroutine, as with any context
// of another package.
func Lazy(parent context.Context, d time.Time) (context.Context, context.CancelFunc) {
	c := NewLazy(parent, context.WithoutCancel(parent), d)
	return c, c.Cancel
}

// NewLazy is Lazy for a caller that makes many under one parent, at one
// allocation each: values must be context.WithoutCancel(parent), made
// once for them all, and the context is cancelled by its Cancel method.
func NewLazy(parent, values context.Context, d time.Time) *LazyContext {
	if pd, ok := parent.Deadline(); ok && pd.Before(d) {
		d = pd
	}
	return &LazyContext{values: values, parent: parent, deadline: d}
}

// LazyContext is the context of Lazy and NewLazy.
type LazyContext struct {
	// values gives parent's values but not its cancellation, so that
	// context.Cause finds no cancelCtx of parent's and answers Err.
	values   context.Context
	parent   context.Context
	deadline time.Time

	mu   sync.Mutex
	done chan struct{}  // made by the first Done
	err  error          // why it ended; nil while it has not
	stop [2]func() bool // the timer and the watch on parent, once Done started them
}

// Cancel ends c, unless it has ended, as its CancelFunc would.
func (c *LazyContext) Cancel() { c.end(context.Canceled) }

func (c *LazyContext) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *LazyContext) Value(key any) any { return c.values.Value(key) }

func (c *LazyContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	c.done = make(chan struct{})
	if c.err == nil {
		c.err = c.over()
	}
	if c.err != nil {
		close(c.done)
		return c.done
	}
	// Both call end, which takes mu: the timer's function runs in its own
	// goroutine, and so does AfterFunc's if parent has already ended.
	c.stop[0] = time.AfterFunc(time.Until(c.deadline), func() { c.end(context.DeadlineExceeded) }).Stop
	c.stop[1] = context.AfterFunc(c.parent, func() { c.end(c.parent.Err()) })
	return c.done
}

func (c *LazyContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		if err := c.over(); err != nil {
			c.finish(err)
		}
	}
	return c.err
}

func (c *LazyContext) String() string { return "deadline.Lazy" }

// over says why c is over, without its timer: parent ended, or the
// deadline passed.
func (c *LazyContext) over() error {
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// end ends c with err, unless it has ended.
func (c *LazyContext) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.finish(err)
	}
}

// finish records err, closes done if Done made it and stops what watches
// for the end; mu is held.
func (c *LazyContext) finish(err error) {
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	for i, stop := range c.stop {
		if stop != nil {
			stop()
			c.stop[i] = nil
		}
	}
}
