package host

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/direct"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestUndeliveredGoesToTheNextInstance: a plugin killed between calls
// leaves the host's idle connections to it, and a call on one of them
// reaches no plugin. The call is put to the instance that replaces it,
// and allows. It used to fail, and the peer of a handshake made in the
// moment between the death and the host seeing it was rejected.
func TestUndeliveredGoesToTheNextInstance(t *testing.T) {
	var logs syncbuf.Buffer
	p := idlePlugin(t, "allowlist", Config{VerifyTimeout: 5 * time.Second, MaxBackoff: time.Hour, Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})})
	killed := killablePair(t, &lateWatch{acked: make(chan struct{})}, 1)
	first := &instance{v: killed.client, life: alive{}, pid: 1, started: time.Now()}
	p.install(first)
	req := &verify.Request{PeerChain: [][]byte{[]byte("leaf")}}
	if _, err := p.Verify(context.Background(), req); err != nil {
		t.Fatalf("Verify before the kill: %v", err)
	}
	killed.kill() // the idle connection stays in the client's pool

	allows := &lateWatch{acked: make(chan struct{})}
	allows.allow.Store(true)
	next := &instance{v: directPair(t, allows, 1), life: alive{}, pid: 2, started: time.Now()}
	go func() {
		// The restart: once the first instance is out of service.
		if wait.Until(5*time.Second, func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.cur == nil }) {
			p.install(next)
		}
	}()
	v, err := p.Verify(context.Background(), req)
	if err != nil || !v.Allow {
		t.Fatalf("Verify after the kill = %+v, %v; want the next instance's allow\n%s", v, err, logs.String())
	}
}

// killable is a plugin served in this process over the direct protocol:
// the host's client, with maxConns connections, and kill, which closes the
// plugin's ends as a process's death would.
type killable struct {
	client *direct.Client
	kill   func()
}

func killablePair(t *testing.T, v verify.Verifier, maxConns int) killable {
	t.Helper()
	host, f, err := direct.NewChannel()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		direct.Serve(ctx, c.(*net.UnixConn), v, nil)
	}()
	client := direct.NewClient(host, maxConns)
	client.SetNotifies(false)
	kill := func() {
		cancel() // Serve closes the channel and every connection
		<-done
	}
	t.Cleanup(func() {
		client.Close()
		kill()
	})
	return killable{client, kill}
}

// brokenCall is a plugin whose every call breaks, as when its process is
// killed in the middle of it, and which says so to the test (broke).
type brokenCall struct {
	lateWatch
	broke chan struct{}
}

func (b *brokenCall) Verify(context.Context, *verify.Request) (*verify.Verdict, error) {
	close(b.broke)
	return nil, fmt.Errorf("%w: verify: connection closed before an answer", direct.ErrTransport)
}

// TestBrokenCallTellsTheProcessEnd: a call whose connection broke is most
// often a plugin killed in the middle of it (the OOM killer), and its
// process is seen to end a moment after. The instance goes out of
// service at once, but its kill waits for that moment, so that the log
// says how the process ended; the host's own SIGKILL, sent first, used to
// hide it. A process that does not end is killed after the grace.
func TestBrokenCallTellsTheProcessEnd(t *testing.T) {
	for _, dies := range []bool{true, false} {
		t.Run(map[bool]string{true: "the process ends", false: "the process lives on"}[dies], func(t *testing.T) {
			var logs syncbuf.Buffer
			p := idlePlugin(t, "oom", Config{VerifyTimeout: 5 * time.Second, MaxBackoff: time.Hour, Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})})
			acked := make(chan struct{})
			close(acked) // its watch is up
			b := &brokenCall{lateWatch: lateWatch{acked: acked}, broke: make(chan struct{})}
			life := &dying{}
			p.install(&instance{v: b, life: life, pid: 1, started: time.Now()})
			if dies {
				go func() {
					<-b.broke
					time.Sleep(20 * time.Millisecond) // the exit, seen a moment later
					life.dead.Store(true)
				}()
			}
			if _, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{[]byte("leaf")}}); err == nil {
				t.Fatal("a broken call allowed")
			}
			told := `process ended: pid=1 status="signal: killed"`
			if !wait.Until(10*time.Second, func() bool { return life.killed.Load() && (!dies || strings.Contains(logs.String(), told)) }) {
				t.Fatalf("killed %v, want killed and, for a process that ended, %q logged:\n%s", life.killed.Load(), told, logs.String())
			}
		})
	}
}
