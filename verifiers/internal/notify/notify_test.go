package notify

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/verify"
)

func recv(t *testing.T, ch <-chan verify.PolicyChange) (verify.PolicyChange, bool) {
	t.Helper()
	select {
	case c, ok := <-ch:
		return c, ok
	case <-time.After(5 * time.Second):
		t.Fatal("no change delivered")
	}
	return verify.PolicyChange{}, false
}

func TestPublishReachesEverySubscriber(t *testing.T) {
	var b Broadcaster
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subs := []<-chan verify.PolicyChange{b.Subscribe(ctx), b.Subscribe(ctx)}
	if e := b.Publish("one"); e != 1 {
		t.Fatalf("first epoch = %d, want 1", e)
	}
	for i, ch := range subs {
		c, ok := recv(t, ch)
		if !ok || c.Epoch != 1 || c.Reason != "one" {
			t.Errorf("subscriber %d got %+v (open %v), want epoch 1 %q", i, c, ok, "one")
		}
	}
}

func TestSlowSubscriberGetsLatest(t *testing.T) {
	var b Broadcaster
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := b.Subscribe(ctx)
	for range 5 {
		b.Publish("x")
	}
	if c, _ := recv(t, ch); c.Epoch != 5 {
		t.Fatalf("got epoch %d, want the latest, 5", c.Epoch)
	}
	if b.Epoch() != 5 {
		t.Fatalf("Epoch() = %d, want 5", b.Epoch())
	}
}

func TestCancelClosesAndConcurrentPublish(t *testing.T) {
	var b Broadcaster
	ctx, cancel := context.WithCancel(context.Background())
	ch := b.Subscribe(ctx)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				b.Publish("p")
			}
		}()
	}
	cancel()
	wg.Wait()
	for {
		if _, ok := recv(t, ch); !ok {
			break
		}
	}
	if b.Epoch() != 400 {
		t.Fatalf("Epoch() = %d, want 400", b.Epoch())
	}
}
