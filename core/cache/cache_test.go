package cache_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/cache"
	"github.com/tlspin/tlspin/core/verify"
)

// fake answers with a fixed verdict and counts calls.
type fake struct {
	calls    atomic.Int64
	cacheFor time.Duration
	allow    bool
	commit   bool
	err      error
	// block, if set, is waited on inside Verify.
	block chan struct{}
	mu    sync.Mutex
	subs  []func(verify.PolicyChange)
}

func (f *fake) Verify(ctx context.Context, req *verify.Request) (*verify.Verdict, error) {
	f.calls.Add(1)
	if f.block != nil {
		<-f.block
	}
	if f.err != nil {
		return nil, f.err
	}
	return &verify.Verdict{Allow: f.allow, Reason: "fake", CacheFor: f.cacheFor, Commit: f.commit}, nil
}

func (f *fake) OnPolicyChange(fn func(verify.PolicyChange)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = append(f.subs, fn)
}

func (f *fake) change() {
	f.mu.Lock()
	subs := append([]func(verify.PolicyChange){}, f.subs...)
	f.mu.Unlock()
	for _, s := range subs {
		s(verify.PolicyChange{Reason: "test"})
	}
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func req(chain, server string, side verify.Side, remote string) *verify.Request {
	return &verify.Request{PeerChain: [][]byte{[]byte(chain)}, ServerName: server, Side: side, RemoteAddr: remote}
}

func TestKeying(t *testing.T) {
	base := req("leaf", "example.com", verify.ClientVerifiesServer, "10.0.0.1:443")
	tests := []struct {
		name    string
		second  *verify.Request
		wantHit bool
	}{
		{"same question", req("leaf", "example.com", verify.ClientVerifiesServer, "10.0.0.1:443"), true},
		{"other chain", req("leaf2", "example.com", verify.ClientVerifiesServer, "10.0.0.1:443"), false},
		{"longer chain", &verify.Request{PeerChain: [][]byte{[]byte("leaf"), []byte("ca")}, ServerName: "example.com", Side: verify.ClientVerifiesServer, RemoteAddr: "10.0.0.1:443"}, false},
		{"other server name", req("leaf", "example.org", verify.ClientVerifiesServer, "10.0.0.1:443"), false},
		{"other side", req("leaf", "example.com", verify.ServerVerifiesClient, "10.0.0.1:443"), false},
		{"other dialled address", req("leaf", "example.com", verify.ClientVerifiesServer, "10.0.0.2:443"), false},
		// A verdict given to a question no Commit follows (an open
		// connection asked about again) must not answer a handshake's,
		// which a verifier may want to record.
		{"asked about again", &verify.Request{PeerChain: [][]byte{[]byte("leaf")}, ServerName: "example.com", Side: verify.ClientVerifiesServer, RemoteAddr: "10.0.0.1:443", NoCommit: true}, false},
		{"other other fields", &verify.Request{PeerChain: [][]byte{[]byte("leaf")}, ServerName: "example.com", Side: verify.ClientVerifiesServer, RemoteAddr: "10.0.0.1:443", TLSVersion: 0x0303, ALPN: "h2"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{allow: true, cacheFor: time.Minute}
			d := cache.New(cache.Config{}).Wrap("fake", f)
			ctx := context.Background()
			if _, err := d.Verify(ctx, base); err != nil {
				t.Fatal(err)
			}
			v, err := d.Verify(ctx, tt.second)
			if err != nil || !v.Allow {
				t.Fatalf("Verify = %v, %v", v, err)
			}
			if got := f.calls.Load() == 1; got != tt.wantHit {
				t.Fatalf("hit = %v, want %v (calls %d)", got, tt.wantHit, f.calls.Load())
			}
		})
	}
}

func TestServerSideIgnoresClientPort(t *testing.T) {
	f := &fake{allow: true, cacheFor: time.Minute}
	d := cache.New(cache.Config{}).Wrap("fake", f)
	ctx := context.Background()
	d.Verify(ctx, req("leaf", "", verify.ServerVerifiesClient, "10.0.0.1:50000"))
	d.Verify(ctx, req("leaf", "", verify.ServerVerifiesClient, "10.0.0.1:50001"))
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("calls = %d, want 1: a client's ephemeral port must not defeat the cache", n)
	}
	d.Verify(ctx, req("leaf", "", verify.ServerVerifiesClient, "10.0.0.2:50000"))
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("calls = %d, want 2: another client host must be asked about", n)
	}
}

func TestWhatIsCached(t *testing.T) {
	boom := errors.New("plugin crashed")
	tests := []struct {
		name      string
		f         *fake
		wantCalls int64
	}{
		{"allow with cache_for", &fake{allow: true, cacheFor: time.Minute}, 1},
		{"reject with cache_for", &fake{allow: false, cacheFor: time.Minute}, 1},
		{"no cache_for", &fake{allow: true}, 3},
		{"negative cache_for", &fake{allow: true, cacheFor: -time.Second}, 3},
		// It holds only for the handshake it was made for.
		{"allow waiting for commit, with cache_for", &fake{allow: true, commit: true, cacheFor: time.Minute}, 3},
		{"error", &fake{err: boom, cacheFor: time.Minute}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := cache.New(cache.Config{}).Wrap("fake", tt.f)
			for range 3 {
				v, err := d.Verify(context.Background(), req("leaf", "x", verify.ClientVerifiesServer, "a:1"))
				if tt.f.err != nil {
					if !errors.Is(err, boom) || v != nil {
						t.Fatalf("Verify = %v, %v; want the error", v, err)
					}
					continue
				}
				if err != nil || v.Allow != tt.f.allow {
					t.Fatalf("Verify = %+v, %v", v, err)
				}
			}
			if n := tt.f.calls.Load(); n != tt.wantCalls {
				t.Fatalf("calls = %d, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	f := &fake{allow: true, cacheFor: 10 * time.Second}
	d := cache.New(cache.Config{Now: clk.now}).Wrap("fake", f)
	r := req("leaf", "x", verify.ClientVerifiesServer, "a:1")
	ctx := context.Background()
	steps := []struct {
		advance   time.Duration
		wantCalls int64
	}{
		{0, 1}, {5 * time.Second, 1}, {4 * time.Second, 1}, {time.Second, 2}, {9 * time.Second, 2}, {time.Second, 3},
	}
	for i, s := range steps {
		clk.add(s.advance)
		if _, err := d.Verify(ctx, r); err != nil {
			t.Fatal(err)
		}
		if n := f.calls.Load(); n != s.wantCalls {
			t.Fatalf("step %d: calls = %d, want %d", i, n, s.wantCalls)
		}
	}
}

func TestBounded(t *testing.T) {
	c := cache.New(cache.Config{MaxEntries: 3})
	f := &fake{allow: true, cacheFor: time.Minute}
	d := c.Wrap("fake", f)
	ctx := context.Background()
	ask := func(s string) { d.Verify(ctx, req(s, "x", verify.ClientVerifiesServer, "a:1")) }
	for _, s := range []string{"a", "b", "c"} {
		ask(s)
	}
	ask("a") // a is now the most recently used; b the least
	ask("d") // evicts b
	if st := c.Stats(); st.Entries != 3 || st.Evictions != 1 {
		t.Fatalf("stats = %+v, want 3 entries and 1 eviction", st)
	}
	before := f.calls.Load()
	ask("a")
	ask("c")
	ask("d")
	if f.calls.Load() != before {
		t.Fatal("a, c or d was evicted; want only the least recently used (b) gone")
	}
	ask("b")
	if f.calls.Load() != before+1 {
		t.Fatal("b was still cached")
	}
}

func TestInvalidation(t *testing.T) {
	c := cache.New(cache.Config{})
	f1 := &fake{allow: true, cacheFor: time.Minute}
	f2 := &fake{allow: true, cacheFor: time.Minute}
	// Two members under the same name must not share entries.
	d1, d2 := c.Wrap("tofu", f1), c.Wrap("tofu", f2)
	ctx := context.Background()
	r := req("leaf", "x", verify.ClientVerifiesServer, "a:1")
	d1.Verify(ctx, r)
	d2.Verify(ctx, r)
	d1.Verify(ctx, r)
	d2.Verify(ctx, r)
	if f1.calls.Load() != 1 || f2.calls.Load() != 1 {
		t.Fatalf("calls = %d, %d; want 1, 1", f1.calls.Load(), f2.calls.Load())
	}
	f1.change() // f1's policy changed: only d1's entries go
	d1.Verify(ctx, r)
	d2.Verify(ctx, r)
	if f1.calls.Load() != 2 || f2.calls.Load() != 1 {
		t.Fatalf("after a policy change of f1: calls = %d, %d; want 2, 1", f1.calls.Load(), f2.calls.Load())
	}
	c.Purge()
	d1.Verify(ctx, r)
	d2.Verify(ctx, r)
	if f1.calls.Load() != 3 || f2.calls.Load() != 2 {
		t.Fatalf("after Purge: calls = %d, %d; want 3, 2", f1.calls.Load(), f2.calls.Load())
	}
}

// A verdict decided before a policy change but returned after it must not
// be stored: it may be the very verdict the change made wrong.
func TestChangeDuringVerifyIsNotStored(t *testing.T) {
	f := &fake{allow: true, cacheFor: time.Minute, block: make(chan struct{})}
	c := cache.New(cache.Config{})
	d := c.Wrap("fake", f)
	ctx := context.Background()
	r := req("leaf", "x", verify.ClientVerifiesServer, "a:1")
	done := make(chan error)
	go func() {
		_, err := d.Verify(ctx, r)
		done <- err
	}()
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	f.change()
	close(f.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Entries != 0 || st.Stores != 0 {
		t.Fatalf("stats = %+v; the stale verdict was stored", st)
	}
	d.Verify(ctx, r)
	if f.calls.Load() != 2 {
		t.Fatalf("calls = %d, want 2", f.calls.Load())
	}
}

func TestNilCacheWrapsNothing(t *testing.T) {
	var c *cache.Cache
	f := &fake{allow: true, cacheFor: time.Minute}
	if d := c.Wrap("fake", f); d != verify.Decider(f) {
		t.Fatalf("nil cache wrapped: %T", d)
	}
}

func TestNoChainIsPassedThrough(t *testing.T) {
	f := &fake{allow: false, cacheFor: time.Minute}
	d := cache.New(cache.Config{}).Wrap("fake", f)
	for range 2 {
		d.Verify(context.Background(), &verify.Request{})
	}
	if f.calls.Load() != 2 {
		t.Fatalf("calls = %d, want 2", f.calls.Load())
	}
}

func TestConcurrent(t *testing.T) {
	c := cache.New(cache.Config{MaxEntries: 16})
	fs := []*fake{{allow: true, cacheFor: time.Minute}, {allow: false, cacheFor: time.Minute}}
	ds := []verify.Decider{c.Wrap("a", fs[0]), c.Wrap("b", fs[1])}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				k := i % 2
				v, err := ds[k].Verify(context.Background(), req(fmt.Sprint(g*7+i%40), "x", verify.ClientVerifiesServer, "a:1"))
				if err != nil || v.Allow != fs[k].allow {
					t.Errorf("Verify = %+v, %v", v, err)
					return
				}
				if i%97 == 0 {
					fs[k].change()
				}
				if i%251 == 0 {
					c.Purge()
				}
			}
		})
	}
	wg.Wait()
	if st := c.Stats(); st.Entries > 16 {
		t.Fatalf("stats = %+v: more entries than the bound", st)
	}
	// Whether the goroutines above hit each other's entries depends on
	// scheduling; after the storm, the cache must still serve repeats.
	r := req("after", "x", verify.ClientVerifiesServer, "a:1")
	ds[0].Verify(context.Background(), r)
	before := c.Stats().Hits
	if v, err := ds[0].Verify(context.Background(), r); err != nil || !v.Allow || c.Stats().Hits != before+1 {
		t.Fatalf("repeat after concurrent use: %+v, %v, hits %d -> %d", v, err, before, c.Stats().Hits)
	}
}

func BenchmarkHit(b *testing.B) {
	d := cache.New(cache.Config{}).Wrap("fake", &fake{allow: true, cacheFor: time.Hour})
	r := &verify.Request{PeerChain: [][]byte{make([]byte, 600)}, ServerName: "example.com", Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:443"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d.Verify(ctx, r)
	}
}
