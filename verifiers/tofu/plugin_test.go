package tofu_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
	"github.com/tlspin/tlspin/verifiers/internal/vtest"
)

func TestMain(m *testing.M) { testbin.Main(m) }

func TestTOFUThroughPlugin(t *testing.T) {
	home := t.TempDir()
	p, _ := vtest.Start(t, "tofu", verify.Options{}, vtest.Options{Env: []string{"HOME=" + home}})
	var changes atomic.Int32
	p.OnPolicyChange(func(pc verify.PolicyChange) {
		if pc.Epoch > 0 { // the verifier's own, not the host's
			changes.Add(1)
		}
	})
	path := filepath.Join(home, ".tlspin", "known_pins")
	a := vtest.New(t, vtest.Spec{CN: "a"})
	mitm := vtest.New(t, vtest.Spec{CN: "a"})
	tests := []struct {
		name   string
		c      *vtest.Cert
		allow  bool
		reason []string
	}{
		{"first use", a, true, []string{path, "first use"}},
		{"again", a, true, []string{path + ":3"}},
		{"renewed, same key", a.Renew(t, nil), true, []string{path + ":3"}},
		{"new key", mitm, false, []string{"REMOTE HOST IDENTIFICATION HAS CHANGED", "localhost:8443", path + ":3",
			"spki:" + a.Pin(t, pin.SPKI, pin.FormatBase64), "spki:" + mitm.Pin(t, pin.SPKI, pin.FormatBase64), "known-pins --file " + path + " remove localhost:8443"}},
	}
	for _, tt := range tests {
		v := vtest.Handshake(t, p, &verify.Request{PeerChain: vtest.Chain(tt.c), ServerName: "localhost", RemoteAddr: "127.0.0.1:8443"})
		if v.Allow != tt.allow {
			t.Fatalf("%s: allow = %v (%s), want %v", tt.name, v.Allow, v.Reason, tt.allow)
		}
		for _, r := range tt.reason {
			if !strings.Contains(v.Reason+v.Matched, r) {
				t.Errorf("%s: %q does not mention %q", tt.name, v.Reason+v.Matched, r)
			}
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("pins file: %v, %v; want mode 0600", fi, err)
	}
	if !wait.Until(5*time.Second, func() bool { return changes.Load() > 0 }) {
		t.Error("recording was not announced as a policy change")
	}
}

// TestTwoProcessesShareTheFile records peers from two plugin processes at
// once: no line may be lost to a concurrent rewrite.
func TestTwoProcessesShareTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_pins")
	ps := []*host.Plugin{}
	for range 2 {
		p, _ := vtest.Start(t, "tofu", verify.Options{"file": {path}})
		ps = append(ps, p)
	}
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		c := vtest.New(t, vtest.Spec{CN: fmt.Sprint(i)})
		for _, p := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := &verify.Request{PeerChain: vtest.Chain(c), RemoteAddr: fmt.Sprintf("127.0.0.1:%d", 2000+i), Side: verify.ClientVerifiesServer}
				v, err := p.Verify(t.Context(), req)
				if err == nil && v.Allow && v.Commit {
					_, err = p.Commit(t.Context(), req)
				}
				if err != nil {
					errs <- err
				} else if !v.Allow {
					errs <- fmt.Errorf("peer %d rejected: %s", i, v.Reason)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if c := strings.Count(string(data), fmt.Sprintf("127.0.0.1:%d ", 2000+i)); c != 1 {
			t.Errorf("peer %d is on %d lines, want 1:\n%s", i, c, data)
		}
	}
}
