package rpc_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/core/verify"
	verifierv1 "github.com/tlspin/tlspin/proto/verifier/v1"
)

// gated is a verifier whose subscription to its policy changes returns
// only when the test says.
type gated struct {
	fake
	subscribing chan struct{} // closed when PolicyChanges is called
	subscribe   func()        // lets PolicyChanges return
	subscribed  chan struct{} // closed by subscribe
	changes     chan verify.PolicyChange
}

func newGated() *gated {
	g := &gated{subscribing: make(chan struct{}), subscribed: make(chan struct{}), changes: make(chan verify.PolicyChange)}
	g.subscribe = sync.OnceFunc(func() { close(g.subscribed) })
	return g
}

func (g *gated) PolicyChanges(context.Context) <-chan verify.PolicyChange {
	close(g.subscribing)
	<-g.subscribed
	return g.changes
}

// headerWatch is a client stream whose Header closes waiting when called.
type headerWatch struct {
	grpc.ClientStream
	waiting func()
}

func (h headerWatch) Header() (metadata.MD, error) {
	h.waiting()
	return h.ClientStream.Header()
}

// TestWatchReturnsOnceSubscribed: WatchPolicy returns only once the plugin
// has subscribed to the verifier's changes. The host takes its return to
// mean that every change from then on reaches it; a change made before
// the subscription (an allowlist reloaded) would reach no one, and a
// verdict cached before it would outlive it.
func TestWatchReturnsOnceSubscribed(t *testing.T) {
	g := newGated()
	t.Cleanup(g.subscribe) // the server waits for its streams
	waiting := make(chan struct{})
	c, _ := serve(t, g, grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(ctx, desc, cc, method, opts...)
		return headerWatch{s, sync.OnceFunc(func() { close(waiting) })}, err
	}))
	type watch struct {
		ch  <-chan verify.PolicyChange
		err error
	}
	returned := make(chan watch, 1)
	go func() {
		ch, err := c.WatchPolicy(t.Context())
		returned <- watch{ch, err}
	}()
	select {
	case <-g.subscribing:
	case <-time.After(10 * time.Second):
		t.Fatal("the plugin did not subscribe to the verifier's changes within 10 s of WatchPolicy")
	}
	// The subscription is held: the client must be waiting for the
	// plugin's acknowledgement, not back already.
	select {
	case <-waiting:
	case w := <-returned:
		t.Fatalf("WatchPolicy returned (%v) before the plugin had subscribed", w.err)
	}
	g.subscribe()
	var w watch
	select {
	case w = <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("WatchPolicy did not return within 10 s of the plugin subscribing")
	}
	if w.err != nil {
		t.Fatal(w.err)
	}
	g.changes <- verify.PolicyChange{Epoch: 1, Reason: "reloaded"}
	select {
	case got := <-w.ch:
		if got.Epoch != 1 || got.Reason != "reloaded" {
			t.Fatalf("change = %+v; want epoch 1, reloaded", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no change within 10 s")
	}
}

// TestWatchOfASilentVerifier: a verifier without policy changes
// acknowledges the watch too, and keeps it open and silent until ctx
// ends.
func TestWatchOfASilentVerifier(t *testing.T) {
	c, _ := serve(t, &fake{})
	ctx, cancel := context.WithCancel(t.Context())
	returned := make(chan error, 1)
	var ch <-chan verify.PolicyChange
	go func() {
		var err error
		ch, err = c.WatchPolicy(ctx)
		returned <- err
	}()
	select {
	case err := <-returned:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("WatchPolicy of a verifier without policy changes did not return within 10 s")
	}
	select {
	case got, ok := <-ch:
		t.Fatalf("change %+v (open %v) from a verifier without policy changes", got, ok)
	default:
	}
	cancel()
	if got, ok := <-ch; ok {
		t.Fatalf("change %+v after ctx ended", got)
	}
}

// endedWatch is a plugin whose WatchPolicy ends at once with err.
type endedWatch struct {
	verifierv1.UnimplementedVerifierServer
	err error
}

func (e endedWatch) WatchPolicy(*verifierv1.WatchPolicyRequest, grpc.ServerStreamingServer[verifierv1.PolicyChange]) error {
	return e.err
}

// watchOf serves plugin, a gRPC verifier of the test's own, and returns a
// client of it and a context to watch it within.
func watchOf(t *testing.T, plugin verifierv1.VerifierServer) (*rpc.Client, context.Context, context.CancelFunc) {
	t.Helper()
	c, _ := serveWith(t, func(srv *grpc.Server) error {
		verifierv1.RegisterVerifierServer(srv, plugin)
		return nil
	}, rpc.DialOptions()...)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	return c, ctx, cancel
}

// TestWatchThatEndsUnacknowledged: only UNIMPLEMENTED says the plugin has
// no changes to report (verify.ErrNoPolicyWatch), which lets the host
// serve it without a watch. A watch that ends in any other way before it
// was acknowledged is an error, so that the host does not take a broken
// watch for "no changes" and keep verdicts no change would drop.
func TestWatchThatEndsUnacknowledged(t *testing.T) {
	tests := []struct {
		name    string
		plugin  verifierv1.VerifierServer
		noWatch bool
	}{
		{"unimplemented", verifierv1.UnimplementedVerifierServer{}, true},
		{"ended without a status", endedWatch{}, false},
		{"internal", endedWatch{err: status.Error(codes.Internal, "broken")}, false},
		{"unavailable", endedWatch{err: status.Error(codes.Unavailable, "gone")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ctx, cancel := watchOf(t, tt.plugin)
			defer cancel()
			ch, err := c.WatchPolicy(ctx)
			if got := errors.Is(err, verify.ErrNoPolicyWatch); got != tt.noWatch || err == nil {
				t.Fatalf("WatchPolicy = %v, %v; want an error, ErrNoPolicyWatch %v", ch, err, tt.noWatch)
			}
		})
	}
}

// endingWatch is a plugin whose WatchPolicy acknowledges the watch, then
// ends with err, or with hold only once the client has gone.
type endingWatch struct {
	verifierv1.UnimplementedVerifierServer
	err  error
	hold bool
}

func (e endingWatch) WatchPolicy(_ *verifierv1.WatchPolicyRequest, st grpc.ServerStreamingServer[verifierv1.PolicyChange]) error {
	if err := st.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	if e.hold {
		<-st.Context().Done()
		return st.Context().Err()
	}
	return e.err
}

// TestWatchEnded: once an acknowledged watch's channel is closed, the
// client says why, for the host's log: the plugin ended it, with its
// status's text escaped (a plugin must not forge the host's log lines),
// or without one; nothing while it runs or when its context ended it.
func TestWatchEnded(t *testing.T) {
	tests := []struct {
		name   string
		plugin endingWatch
		want   string // "" for nothing to say
	}{
		{"ended without a status", endingWatch{}, "the plugin ended its policy watch"},
		{"ended with a status", endingWatch{err: status.Error(codes.FailedPrecondition, "allowlist gone\x1b[2J\rforged")},
			`the plugin ended its policy watch with FailedPrecondition: allowlist gone\x1b[2J\x0dforged`},
		{"its context ended", endingWatch{hold: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ctx, cancel := watchOf(t, tt.plugin)
			defer cancel()
			ch, err := c.WatchPolicy(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tt.plugin.hold {
				if why := c.WatchEnded(); why != nil {
					t.Fatalf("WatchEnded = %v while the watch runs", why)
				}
				cancel()
			}
			for range ch {
			}
			why := c.WatchEnded()
			if tt.want == "" {
				if why != nil {
					t.Fatalf("WatchEnded = %v after the watch's context ended it; want nil", why)
				}
				return
			}
			if !errors.Is(why, rpc.ErrTransport) || !strings.Contains(why.Error(), tt.want) {
				t.Fatalf("WatchEnded = %v; want ErrTransport saying %q", why, tt.want)
			}
			if strings.ContainsAny(why.Error(), "\x1b\r") {
				t.Fatalf("ATTACK: raw control characters in the reason: %q", why)
			}
		})
	}
}

// TestLongPolicyChangeReason: a change's reason is cut as the host would
// cut it. Over the host's message cap, it broke the watch, and the host
// restarted the plugin for it.
func TestLongPolicyChangeReason(t *testing.T) {
	g := newGated()
	g.subscribe()
	c, _ := serve(t, g, rpc.DialOptions()...)
	ch, err := c.WatchPolicy(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("reloaded ", 256<<10) // 2.25 MiB
	g.changes <- verify.PolicyChange{Epoch: 1, Reason: long}
	select {
	case got, ok := <-ch:
		if !ok || got.Epoch != 1 || len(got.Reason) > verify.MaxTextLen || !strings.Contains(got.Reason, "truncated") {
			t.Fatalf("change = epoch %d, %d-byte reason (open %v, watch ended: %v); want epoch 1, the reason truncated", got.Epoch, len(got.Reason), ok, c.WatchEnded())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no change within 10 s")
	}
}

// closedNotifier breaks verify.PolicyNotifier's contract: its channel is
// closed at once, not when ctx ends.
type closedNotifier struct{ fake }

func (*closedNotifier) PolicyChanges(context.Context) <-chan verify.PolicyChange {
	ch := make(chan verify.PolicyChange)
	close(ch)
	return ch
}

// TestClosedPolicyChanges: a Go verifier whose PolicyChanges channel is
// closed while the host watches ends the watch, and the host restarts
// the plugin, again and again. Why must reach the author: the host's log
// said only "verifier plugin unreachable: the plugin ended its policy
// watch".
func TestClosedPolicyChanges(t *testing.T) {
	c, _ := serve(t, &closedNotifier{}, rpc.DialOptions()...)
	ch, err := c.WatchPolicy(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("a change from a verifier that announces none")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end within 10 s")
	}
	if why := c.WatchEnded(); why == nil || !strings.Contains(why.Error(), "PolicyChanges channel was closed") {
		t.Fatalf("WatchEnded() = %v; want it to say the verifier closed its PolicyChanges channel", why)
	}
}
