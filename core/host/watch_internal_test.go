package host

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/cache"
	"github.com/tlspin/tlspin/core/verify"
)

// lateWatch is a plugin whose policy the test changes, and whose watch is
// acknowledged only when the test says: until then it has no subscriber,
// and its changes reach no one.
type lateWatch struct {
	allow atomic.Bool
	acked chan struct{} // WatchPolicy returns once closed
}

func (f *lateWatch) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{Name: "late"}, nil
}

func (f *lateWatch) Configure(context.Context, *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	return &verify.ConfigureResponse{}, nil
}

func (f *lateWatch) Verify(context.Context, *verify.Request) (*verify.Verdict, error) {
	return &verify.Verdict{Allow: f.allow.Load(), Reason: "listed", CacheFor: time.Minute}, nil
}

func (f *lateWatch) Commit(context.Context, *verify.Request) (*verify.CommitResponse, error) {
	return &verify.CommitResponse{}, nil
}

func (f *lateWatch) WatchPolicy(ctx context.Context) (<-chan verify.PolicyChange, error) {
	<-f.acked
	ch := make(chan verify.PolicyChange)
	context.AfterFunc(ctx, func() { close(ch) })
	return ch, nil
}

// alive is the lifecycle of a process that never exits.
type alive struct{}

func (alive) exited() bool { return false }
func (alive) kill()        {}
func (alive) stop()        {}

// TestChangeBeforeTheWatchIsNotLost: an instance serves before its policy
// watch is up. A verdict cached then, and a change made before the plugin
// subscribed (an allowlist reloaded), which no one hears of: the verdict
// is dropped once the watch is up, not kept for its minute.
func TestChangeBeforeTheWatchIsNotLost(t *testing.T) {
	cfg := Config{}
	cfg.defaults()
	p := &Plugin{spec: Spec{Name: "late"}, cfg: cfg, log: cfg.Logger, desc: &verify.Description{Name: "late"},
		ready: make(chan struct{}), closeCh: make(chan struct{})}
	f := &lateWatch{acked: make(chan struct{})}
	f.allow.Store(true)
	c := cache.New(cache.Config{})
	m := c.Wrap("late", p)
	p.install(&instance{v: f, life: alive{}, pid: 1, started: time.Now()})

	req := &verify.Request{PeerChain: [][]byte{[]byte("leaf")}, Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:443"}
	v, err := m.Verify(t.Context(), req)
	if err != nil || !v.Allow {
		t.Fatalf("before the change: %+v, %v; want an allow", v, err)
	}
	if s := c.Stats(); s.Stores != 1 {
		t.Fatalf("the allow was not cached: %+v", s)
	}
	f.allow.Store(false) // the list is reloaded; nobody subscribed yet
	close(f.acked)       // the plugin subscribes and acknowledges
	p.Close()            // waits for the watch to end
	if s := c.Stats(); s.Entries != 0 {
		t.Fatalf("the allow cached before the watch was up outlived a change made then: %+v", s)
	}
}
