package tlspin_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestCloseDuringHandshakes: Close while handshakes wait for a verifier
// that hangs returns at once, and each of those handshakes fails closed
// with an error of a closed Verifiers (ErrClosed and ErrVerifierFailed,
// not ErrRejected) that says so: it used to say that the caller gave up
// waiting, though no caller did.
func TestCloseDuringHandshakes(t *testing.T) {
	srv := newIdentity("server")
	addr := tlsServer(t, srv)
	const timeout = 20 * time.Second
	v := start(t, []string{"misbehave:mode=hang"}, tlspin.WithPluginDirs(misbehaveDir(t)), tlspin.WithVerifyTimeout(timeout))
	handshakes := map[string]func() error{
		"Dial": func() error {
			c, err := v.Dial(context.Background(), "tcp", addr)
			if err == nil {
				c.Close()
			}
			return err
		},
		"ClientConfig": func() error {
			c, err := tls.Dial("tcp", addr, v.ClientConfig("localhost"))
			if err == nil {
				c.Close()
			}
			return err
		},
	}
	var wg sync.WaitGroup
	errs := map[string]error{}
	var mu sync.Mutex
	for name, hs := range handshakes {
		wg.Go(func() {
			err := hs()
			mu.Lock()
			errs[name] = err
			mu.Unlock()
		})
	}
	// Both wait for the verifier: one cache miss each.
	if !wait.Until(5*time.Second, func() bool { return v.Stats().CacheMisses == uint64(len(handshakes)) }) {
		t.Fatalf("the handshakes did not reach the verifier: %+v", v.Stats())
	}
	begun := time.Now()
	var closers sync.WaitGroup
	for range 2 {
		closers.Go(func() { v.Close() })
	}
	closers.Wait()
	wg.Wait()
	if took := time.Since(begun); took > timeout/4 {
		t.Errorf("Close and the handshakes in flight took %s", took.Round(time.Millisecond))
	}
	for name, err := range errs {
		var re *tlspin.RejectionError
		if !errors.As(err, &re) || !errors.Is(err, tlspin.ErrClosed) || !errors.Is(err, tlspin.ErrVerifierFailed) || errors.Is(err, tlspin.ErrRejected) {
			t.Errorf("%s: %v\nwant a *RejectionError matching ErrClosed and ErrVerifierFailed, not ErrRejected", name, err)
			continue
		}
		if !strings.Contains(re.Reason(), "verifiers closed") || strings.Contains(re.Reason(), "gave up") {
			t.Errorf("%s: reason %q, want it to say the verifiers were closed", name, re.Reason())
		}
	}
}
