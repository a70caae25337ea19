package host

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/direct"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/syncbuf"
)

// slow allows every peer after d: a verifier that is slow but answers in
// time (tofu recording a first use while another process holds its lock).
type slow struct{ d time.Duration }

func (slow) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{Name: "slow"}, nil
}

func (slow) Configure(context.Context, *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	return &verify.ConfigureResponse{}, nil
}

func (s slow) Verify(ctx context.Context, _ *verify.Request) (*verify.Verdict, error) {
	select {
	case <-time.After(s.d):
		return &verify.Verdict{Allow: true}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// directPair serves v over the direct protocol in this process and
// returns the host's client, with maxConns connections.
func directPair(t *testing.T, v verify.Verifier, maxConns int) *direct.Client {
	t.Helper()
	return killablePair(t, v, maxConns).client
}

// TestQueuedCallsAreNotAHang: the verify timeout starts once a call holds
// a connection to tlspin-builtins. A call that waited behind another
// caller's slow but timely call, then was answered within its own time,
// allows; one that found every connection busy for the whole timeout is
// rejected; neither restarts the plugin, which has answered every call it
// was given in time. The timeout used to run from the call's start, so
// the second call was taken for a hang and the plugin restarted, failing
// the calls in flight.
func TestQueuedCallsAreNotAHang(t *testing.T) {
	const (
		answer  = 300 * time.Millisecond // each call's time in the plugin
		timeout = 450 * time.Millisecond
	)
	var logs syncbuf.Buffer
	p := idlePlugin(t, "slow", Config{VerifyTimeout: timeout, MaxBackoff: time.Hour, Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})})
	inst := &instance{v: directPair(t, slow{answer}, 1), life: alive{}, pid: 1, started: time.Now()}
	p.install(inst)

	// In this order: the first holds the one connection until 300 ms; the
	// second has it from then until 600 ms, within its own 450; the third
	// gives up waiting at 490 ms.
	var (
		wg   sync.WaitGroup
		errs [3]error
	)
	for i := range errs {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 20 * time.Millisecond)
			var v *verify.Verdict
			v, errs[i] = p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{[]byte("leaf")}})
			if errs[i] == nil && !v.Allow {
				errs[i] = errors.New("rejected")
			}
		})
	}
	wg.Wait()
	for i, err := range errs[:2] {
		if err != nil {
			t.Errorf("call %d: %v; want an allow", i, err)
		}
	}
	if err := errs[2]; !errors.Is(err, ErrTimeout) || !errors.Is(err, direct.ErrBusy) || !strings.Contains(err.Error(), "not restarting it") {
		t.Errorf("call 2: %v; want a timeout that says every connection was busy", err)
	}
	p.mu.Lock()
	inService := p.cur == inst
	p.mu.Unlock()
	if !inService || strings.Contains(logs.String(), "verifier plugin failed") {
		t.Errorf("the plugin was taken out of service (in service: %v):\n%s", inService, logs.String())
	}
}

// hangs never answers Verify, whatever its context says, until released.
type hangs struct {
	slow
	release chan struct{}
}

func (h hangs) Verify(context.Context, *verify.Request) (*verify.Verdict, error) {
	<-h.release
	return nil, errors.New("released")
}

// TestHungCallIsStillAHang: a call that held a connection for the whole
// verify timeout without an answer is a hang, whether or not it waited
// for the connection: the plugin is taken out of service.
func TestHungCallIsStillAHang(t *testing.T) {
	h := hangs{release: make(chan struct{})}
	var logs syncbuf.Buffer
	p := idlePlugin(t, "hangs", Config{VerifyTimeout: 200 * time.Millisecond, MaxBackoff: time.Hour, Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})})
	inst := &instance{v: directPair(t, h, 1), life: alive{}, pid: 1, started: time.Now()}
	t.Cleanup(func() { close(h.release) }) // before directPair's: Serve waits for the call
	p.install(inst)
	start := time.Now()
	_, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{[]byte("leaf")}})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "restarting it") {
		t.Fatalf("Verify = %v; want a timeout that restarts the plugin", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the hung call took %s to fail, want about the verify timeout", took)
	}
	p.mu.Lock()
	inService := p.cur == inst
	p.mu.Unlock()
	if inService {
		t.Errorf("a hung plugin is still in service:\n%s", logs.String())
	}
}
