// Package notify fans a verifier's policy changes out to every watcher, so
// that verifiers whose policy changes while they run (an allowlist
// reloaded, a TOFU pin recorded) can implement verify.PolicyNotifier.
package notify

import (
	"context"
	"sync"

	"github.com/tlspin/tlspin/core/verify"
)

// Broadcaster numbers policy changes and delivers each to every
// subscriber. A slow subscriber is never waited for: it receives the
// latest change, since any change means "drop what you cached". The zero
// value is ready to use.
type Broadcaster struct {
	mu    sync.Mutex
	epoch uint64
	subs  map[chan verify.PolicyChange]struct{}
}

// Subscribe returns a channel of changes that is closed when ctx ends.
func (b *Broadcaster) Subscribe(ctx context.Context) <-chan verify.PolicyChange {
	ch := make(chan verify.PolicyChange, 1)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[chan verify.PolicyChange]struct{}{}
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		delete(b.subs, ch)
		close(ch)
		b.mu.Unlock()
	}()
	return ch
}

// Publish announces a change and returns its epoch.
func (b *Broadcaster) Publish(reason string) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.epoch++
	c := verify.PolicyChange{Epoch: b.epoch, Reason: reason}
	for ch := range b.subs {
		select {
		case ch <- c:
			continue
		default:
		}
		// Full: replace the undelivered change with this newer one.
		select {
		case <-ch:
		default:
		}
		select {
		case ch <- c:
		default:
		}
	}
	return c.Epoch
}

// Epoch returns the number of changes published so far.
func (b *Broadcaster) Epoch() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.epoch
}
