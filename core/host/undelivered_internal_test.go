package host

import (
	"context"
	"net"
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
