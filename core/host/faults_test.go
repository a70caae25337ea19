package host_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// startBad starts badplugin in mode.
func startBad(t *testing.T, mode string, cfg host.Config) *host.Plugin {
	t.Helper()
	bin := testbin.Build(t, "./core/host/testdata/badplugin", "badplugin")
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Error})
	}
	p, err := host.Start(context.Background(), host.Spec{Name: "bad", Path: bin, Args: []string{mode}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func anyReq() *verify.Request {
	return &verify.Request{PeerChain: [][]byte{[]byte("not even a certificate")}, Side: verify.ServerVerifiesClient}
}

// verifyMany runs n concurrent Verify calls and returns their verdicts,
// errors and the longest time one took.
func verifyMany(p *host.Plugin, n int) ([]*verify.Verdict, []error, time.Duration) {
	vs := make([]*verify.Verdict, n)
	errs := make([]error, n)
	durs := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			start := time.Now()
			vs[i], errs[i] = p.Verify(context.Background(), anyReq())
			durs[i] = time.Since(start)
		})
	}
	wg.Wait()
	var longest time.Duration
	for _, d := range durs {
		longest = max(longest, d)
	}
	return vs, errs, longest
}

func TestMisbehavingPluginFailsClosedAndIsReplaced(t *testing.T) {
	const timeout = 400 * time.Millisecond
	tests := []struct {
		mode string
		want error
	}{
		{"garbage", rpc.ErrGarbage},
		{"negative", rpc.ErrGarbage},
		{"exit", rpc.ErrTransport},
		{"hang", host.ErrTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			p := startBad(t, tc.mode, host.Config{VerifyTimeout: timeout, MaxBackoff: 200 * time.Millisecond})
			pid := p.Pid()
			vs, errs, longest := verifyMany(p, 8)
			matched := 0
			for i := range vs {
				if errs[i] == nil {
					t.Fatalf("call %d: verdict %+v from a %s plugin, want an error (fail closed)", i, vs[i], tc.mode)
				}
				if errors.Is(errs[i], tc.want) {
					matched++
				}
			}
			// Calls that reach the plugin after the first failure see it
			// restarting instead; at least one must see the fault itself.
			if matched == 0 {
				t.Errorf("no error wraps %v: %v", tc.want, errs)
			}
			if longest > timeout+time.Second {
				t.Errorf("slowest rejection took %s, want within the verify timeout %s (plus slack)", longest, timeout)
			}
			if !wait.Until(5*time.Second, func() bool { return !alive(pid) }) {
				t.Errorf("misbehaving plugin %d still running", pid)
			}
			if !wait.Until(5*time.Second, func() bool { return p.Restarts() >= 1 && p.Pid() != 0 }) {
				t.Fatalf("plugin not replaced (restarts %d)", p.Restarts())
			}
			// The replacement misbehaves the same way: still no allow.
			if v, err := p.Verify(context.Background(), anyReq()); err == nil {
				t.Fatalf("replacement gave verdict %+v, want an error", v)
			}
		})
	}
}

// TestCrashSaysHowThePluginEnded: a plugin that dies says so with its
// exit status or signal (an OOM kill is a SIGKILL), since go-plugin's own
// account of it is debug level; the host's own kill is not reported as
// the plugin's end.
func TestCrashSaysHowThePluginEnded(t *testing.T) {
	tests := []struct {
		name, mode string
		end        func(p *host.Plugin)
		want       string // in a warning; "" for no such warning
	}{
		{"exits during a call", "exit", func(p *host.Plugin) { p.Verify(context.Background(), anyReq()) }, `status="exit status 3"`},
		{"killed between calls", "allow", func(p *host.Plugin) { syscall.Kill(p.Pid(), syscall.SIGKILL) }, `status="signal: killed"`},
		// Killed by the host for hanging: that is no end of its own.
		{"killed for hanging", "hang", func(p *host.Plugin) { p.Verify(context.Background(), anyReq()) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncbuf.Buffer
			p := startBad(t, tt.mode, host.Config{VerifyTimeout: 300 * time.Millisecond, MaxBackoff: time.Hour,
				Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})})
			tt.end(p)
			if tt.want == "" {
				if !wait.Until(10*time.Second, func() bool { return strings.Contains(logs.String(), "restarting") }) {
					t.Fatalf("the plugin was not failed:\n%s", logs.String())
				}
				p.Close() // waits for its reports
				if strings.Contains(logs.String(), "process ended") {
					t.Errorf("the host's own kill reported as the plugin's end:\n%s", logs.String())
				}
				return
			}
			if !wait.Until(10*time.Second, func() bool { return strings.Contains(logs.String(), tt.want) }) {
				t.Fatalf("no warning says %s:\n%s", tt.want, logs.String())
			}
		})
	}
}

// TestStartFailureSaysWhere: a plugin that dies or hangs while the host
// describes or configures it is refused with an error that says which
// call, how the process ended or which timeout ran out, not only that the
// connection broke or a context ended.
func TestStartFailureSaysWhere(t *testing.T) {
	const startTimeout = 500 * time.Millisecond
	bin := testbin.Build(t, "./core/host/testdata/badplugin", "badplugin")
	tests := []struct {
		mode   string
		wantIs error
		want   []string
	}{
		{"configure-exit", rpc.ErrTransport, []string{"exited during Configure", "exit status 7"}},
		{"configure-hang", host.ErrTimeout, []string{"did not answer Configure within the start timeout (500ms)"}},
		{"describe-hang", host.ErrTimeout, []string{"did not answer Describe within the start timeout (500ms)"}},
		// It printed its handshake line, then serves nothing on its
		// socket: gRPC's own connect timeout (20 s) is not the bound.
		{"silent", host.ErrTimeout, []string{"connecting to", "within the start timeout (500ms)"}},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			cfg := host.Config{StartTimeout: startTimeout, Logger: hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Error})}
			began := time.Now()
			p, err := host.Start(context.Background(), host.Spec{Name: "bad", Path: bin, Args: []string{tc.mode}}, cfg)
			took := time.Since(began)
			if err == nil {
				p.Close()
				t.Fatalf("a plugin in mode %s started", tc.mode)
			}
			// The start timeout bounds the whole start; the slack is for
			// a loaded machine's process start and kill.
			if took > startTimeout+3*time.Second {
				t.Errorf("failed after %s; want the start timeout (%s) to bound it: %v", took.Round(time.Millisecond), startTimeout, err)
			}
			if !errors.Is(err, tc.wantIs) {
				t.Errorf("error does not wrap %v: %v", tc.wantIs, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q: %v", w, err)
				}
			}
		})
	}
}

// TestKillAndStopUnderLoad fires verifications without pause while the
// plugin is SIGKILLed and SIGSTOPped: every call returns within the verify
// timeout, and the plugin serves again after each fault.
func TestKillAndStopUnderLoad(t *testing.T) {
	const timeout = 300 * time.Millisecond
	p := startBad(t, "allow", host.Config{VerifyTimeout: timeout, MaxBackoff: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu      sync.Mutex
		longest time.Duration
		calls   int
		wg      sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				start := time.Now()
				v, err := p.Verify(context.Background(), anyReq())
				d := time.Since(start)
				if err == nil && (v == nil || !v.Allow) {
					t.Errorf("allow plugin said %+v", v)
				}
				mu.Lock()
				longest = max(longest, d)
				calls++
				mu.Unlock()
				if err != nil {
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
	}
	for i, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGKILL, syscall.SIGSTOP} {
		pid := p.Pid()
		if pid == 0 {
			t.Fatal("plugin not running")
		}
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatal(err)
		}
		if !wait.Until(5*time.Second, func() bool { n := p.Pid(); return n != 0 && n != pid }) {
			t.Fatalf("fault %d (%s): plugin not replaced", i, sig)
		}
		if !wait.Until(2*time.Second, func() bool { v, err := p.Verify(context.Background(), anyReq()); return err == nil && v.Allow }) {
			t.Fatalf("fault %d (%s): replacement does not verify", i, sig)
		}
		if !wait.Until(3*time.Second, func() bool { return !alive(pid) }) {
			t.Errorf("fault %d (%s): old plugin %d still alive", i, sig, pid)
		}
	}
	cancel()
	wg.Wait()
	if longest > timeout+500*time.Millisecond {
		t.Errorf("a verification took %s, want at most the verify timeout %s (plus slack)", longest, timeout)
	}
	t.Logf("%d calls, slowest %s, %d restarts", calls, longest, p.Restarts())
}

// TestCallerDeadlineShorterThanTimeout checks that a hung plugin is
// replaced even when every caller gives up before the verify timeout.
func TestCallerDeadlineShorterThanTimeout(t *testing.T) {
	p := startBad(t, "hang", host.Config{VerifyTimeout: 300 * time.Millisecond})
	pid := p.Pid()
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := p.Verify(ctx, anyReq())
		cancel()
		if err == nil {
			t.Fatal("hung plugin allowed")
		}
	}
	if !wait.Until(5*time.Second, func() bool { return p.Restarts() >= 1 && !alive(pid) }) {
		t.Fatalf("hung plugin %d not replaced although callers gave up first", pid)
	}
}

func TestCrashLoopIsReportedNotSpunOn(t *testing.T) {
	dir := t.TempDir()
	crash := filepath.Join(dir, "crash")
	logs := &syncbuf.Buffer{}
	p := startBad(t, "crashfile="+crash, host.Config{
		VerifyTimeout: 200 * time.Millisecond,
		MaxBackoff:    400 * time.Millisecond,
		Logger:        hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Warn}),
	})
	if err := os.WriteFile(crash, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	launches := func() int {
		b, _ := os.ReadFile(crash + ".launches")
		return strings.Count(string(b), "\n")
	}
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Five failures in a row make a crash loop, reported once.
	if !wait.Until(20*time.Second, func() bool { return strings.Contains(logs.String(), "crash-looping") }) {
		t.Fatalf("crash loop not reported in the log:\n%s", logs.String())
	}
	// From now on the host retries at most every MaxBackoff (400ms): a
	// handful of launches a second, where a spinning host makes hundreds.
	before := launches()
	const window = time.Second
	time.Sleep(window) // counting launches over a fixed window is the point
	if n := launches() - before; n > 5 {
		t.Errorf("%d launches in %s of crash loop, want at most a few (backoff)", n, window)
	}
	_, err := p.Verify(context.Background(), anyReq())
	if !errors.Is(err, host.ErrCrashLoop) {
		t.Errorf("Verify during a crash loop: %v, want ErrCrashLoop", err)
	}
	if c := strings.Count(logs.String(), "crash-looping"); c != 1 {
		t.Errorf("crash loop reported %d times, want once", c)
	}
	// The cause goes away: the plugin comes back by itself.
	if err := os.Remove(crash); err != nil {
		t.Fatal(err)
	}
	if !wait.Until(5*time.Second, func() bool { v, err := p.Verify(context.Background(), anyReq()); return err == nil && v.Allow }) {
		t.Fatal("plugin did not recover after the crash cause was removed")
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(es)
}

// TestRestartsReleaseClients restarts a plugin many times and checks that
// goroutines and open files stay bounded: every go-plugin Client of a dead
// instance is released.
func TestRestartsReleaseClients(t *testing.T) {
	p := startBad(t, "allow", host.Config{VerifyTimeout: time.Second, MaxBackoff: 20 * time.Millisecond})
	kill := func() {
		pid := p.Pid()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if !wait.Until(5*time.Second, func() bool { n := p.Pid(); return n != 0 && n != pid }) {
			t.Fatal("plugin not restarted")
		}
		if _, err := p.Verify(context.Background(), anyReq()); err != nil {
			t.Fatalf("after restart: %v", err)
		}
	}
	kill() // warm up: first restart allocates what stays
	settle := func() (int, int) {
		time.Sleep(100 * time.Millisecond)
		return runtime.NumGoroutine(), openFDs(t)
	}
	g0, f0 := settle()
	const cycles = 12
	for range cycles {
		kill()
	}
	var g, f int
	ok := wait.Until(3*time.Second, func() bool {
		g, f = runtime.NumGoroutine(), openFDs(t)
		return g <= g0+8 && f <= f0+4
	})
	if !ok {
		t.Fatalf("after %d restarts: %d goroutines (was %d), %d fds (was %d): clients leak", cycles, g, g0, f, f0)
	}
	t.Logf("after %d restarts: goroutines %d→%d, fds %d→%d", cycles, g0, g, f0, f)
}

// TestCommitThePluginCannotMake: a plugin that allows on condition of a
// commit but implements no Commit (UNIMPLEMENTED) has made no record, and
// the commit fails, in the process that answered the verdict or in the one
// that replaced it; the connection is then rejected.
func TestCommitThePluginCannotMake(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := map[bool]string{false: "same process", true: "after a restart"}[restart]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := startBad(t, "commit", host.Config{})
			v, err := p.Verify(context.Background(), anyReq())
			if err != nil || !v.Allow || !v.Commit {
				t.Fatalf("Verify = %+v, %v; want an allow on condition of a commit", v, err)
			}
			if restart {
				pid := p.Pid()
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				if !wait.Until(10*time.Second, func() bool { n := p.Pid(); return n != 0 && n != pid }) {
					t.Fatal("plugin not restarted")
				}
			}
			if _, err := p.Commit(context.Background(), anyReq()); !errors.Is(err, rpc.ErrGarbage) || !strings.Contains(err.Error(), "does not implement Commit") {
				t.Fatalf("Commit = %v; want ErrGarbage saying the verifier does not implement Commit", err)
			}
		})
	}
}
