package host_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == earlyDirectArg {
		os.Exit(earlyDirectPlugin())
	}
	e2e.HelperHost()
	testbin.Main(m)
}

func newCert(t testing.TB) []byte {
	t.Helper()
	_, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return c.Raw
}

func md5hex(der []byte) string {
	s := md5.Sum(der)
	return hex.EncodeToString(s[:])
}

// channels are the two ways the host talks to a built-in verifier: the
// tlspin binary re-executed (go-plugin's gRPC) and tlspin-builtins (the
// direct protocol).
var channels = []string{"grpc", "direct"}

// md5Spec is the md5pin built-in over channel ch.
func md5Spec(t testing.TB, ch string, opts verify.Options) host.Spec {
	t.Helper()
	return builtinSpec(t, ch, "md5pin", opts)
}

// builtinSpec is built-in verifier name over channel ch.
func builtinSpec(t testing.TB, ch, name string, opts verify.Options) host.Spec {
	t.Helper()
	self := testbin.Tlspin(t)
	f := &host.Finder{Builtins: []string{name}, Self: self, SelfArgs: func(n string) []string { return []string{"__verifier", n} }}
	if ch == "direct" {
		f.BuiltinsExec = filepath.Join(filepath.Dir(self), "tlspin-builtins")
	}
	found, err := f.Find(name)
	if err != nil {
		t.Fatal(err)
	}
	return found.Spec(opts)
}

func startMD5Over(t *testing.T, ch, pin string, cfg host.Config) *host.Plugin {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn})
	}
	p, err := host.Start(context.Background(), md5Spec(t, ch, verify.Options{"pin": {pin}}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// eachChannel runs f once over each channel.
func eachChannel(t *testing.T, f func(t *testing.T, ch string)) {
	for _, ch := range channels {
		t.Run(ch, func(t *testing.T) { f(t, ch) })
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil && !zombie(pid) }

// state returns the process state letter of pid from /proc, or 0.
func state(pid int) byte {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || len(s) <= i+2 {
		return 0
	}
	return s[i+2]
}

func zombie(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

func TestMD5PinThroughSeparateProcess(t *testing.T) { eachChannel(t, testMD5PinThroughSeparateProcess) }

func testMD5PinThroughSeparateProcess(t *testing.T, ch string) {
	good := newCert(t)
	bad := newCert(t)
	p := startMD5Over(t, ch, md5hex(good), host.Config{})
	if pid := p.Pid(); pid == 0 || pid == os.Getpid() {
		t.Fatalf("plugin pid %d: want a separate process", pid)
	}
	tests := []struct {
		name  string
		chain [][]byte
		allow bool
	}{
		{"pinned cert", [][]byte{good}, true},
		{"other cert", [][]byte{bad}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := p.Verify(context.Background(), &verify.Request{PeerChain: tc.chain, Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:1"})
			if err != nil {
				t.Fatal(err)
			}
			if v.Allow != tc.allow {
				t.Fatalf("allow = %v, want %v (reason %q)", v.Allow, tc.allow, v.Reason)
			}
			if !tc.allow && !strings.Contains(v.Reason, md5hex(bad)) {
				t.Errorf("reason %q does not show the received fingerprint %s", v.Reason, md5hex(bad))
			}
		})
	}
}

func TestBadOptionIsAnError(t *testing.T) { eachChannel(t, testBadOptionIsAnError) }

func testBadOptionIsAnError(t *testing.T, ch string) {
	spec := md5Spec(t, ch, verify.Options{"pin": {"nothex"}})
	_, err := host.Start(context.Background(), spec, host.Config{})
	if !errors.Is(err, verify.ErrBadOption) || !strings.Contains(err.Error(), `"nothex"`) {
		t.Fatalf("err = %v, want a bad-option error quoting the value", err)
	}
}

func TestKilledPluginRejectsThenRestarts(t *testing.T) {
	eachChannel(t, testKilledPluginRejectsThenRestarts)
}

func testKilledPluginRejectsThenRestarts(t *testing.T, ch string) {
	good := newCert(t)
	p := startMD5Over(t, ch, md5hex(good), host.Config{VerifyTimeout: 2 * time.Second})
	pid := p.Pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Until a new process runs, and after, a verdict is either a
	// rejection or a correct allow: never an error treated as allow.
	if !wait.Until(5*time.Second, func() bool { n := p.Pid(); return n != 0 && n != pid }) {
		t.Fatalf("plugin not restarted after SIGKILL (pid still %d)", p.Pid())
	}
	v, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{good}})
	if err != nil || !v.Allow {
		t.Fatalf("after restart: verdict %+v, err %v; want allow", v, err)
	}
	if p.Restarts() != 1 {
		t.Errorf("restarts = %d, want 1", p.Restarts())
	}
}

func TestHungPluginTimesOutAndIsReplaced(t *testing.T) {
	eachChannel(t, testHungPluginTimesOutAndIsReplaced)
}

func testHungPluginTimesOutAndIsReplaced(t *testing.T, ch string) {
	good := newCert(t)
	p := startMD5Over(t, ch, md5hex(good), host.Config{VerifyTimeout: 300 * time.Millisecond})
	pid := p.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// kill returns before the process has stopped: wait until it has.
	if !wait.Until(5*time.Second, func() bool { return state(pid) == 'T' }) {
		t.Fatalf("plugin %d did not stop", pid)
	}
	start := time.Now()
	v, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{good}})
	if err == nil {
		t.Fatalf("hung plugin gave verdict %+v; want an error", v)
	}
	if !errors.Is(err, host.ErrTimeout) {
		t.Errorf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("rejection took %s, want about the verify timeout", d)
	}
	if !wait.Until(5*time.Second, func() bool { return !alive(pid) }) {
		t.Errorf("hung plugin %d still alive", pid)
	}
	if !wait.Until(5*time.Second, func() bool { n := p.Pid(); return n != 0 && n != pid }) {
		t.Fatal("plugin not replaced")
	}
	if v, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{good}}); err != nil || !v.Allow {
		t.Fatalf("after replacement: %+v, %v", v, err)
	}
}

// TestCallerDeadlineAlreadyPassed: a caller whose deadline was over
// before the call (--verify-timeout 1ns) is told so, not that the plugin
// gave no verdict "within 0s".
func TestCallerDeadlineAlreadyPassed(t *testing.T) {
	eachChannel(t, testCallerDeadlineAlreadyPassed)
}

func testCallerDeadlineAlreadyPassed(t *testing.T, ch string) {
	good := newCert(t)
	p := startMD5Over(t, ch, md5hex(good), host.Config{})
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	v, err := p.Verify(ctx, &verify.Request{PeerChain: [][]byte{good}})
	if err == nil {
		t.Fatalf("verdict %+v past the caller's deadline; want an error", v)
	}
	if !errors.Is(err, host.ErrTimeout) || !strings.Contains(err.Error(), "deadline had passed before the call") || strings.Contains(err.Error(), "within 0s") {
		t.Errorf("err = %v; want ErrTimeout saying the deadline had passed before the call", err)
	}
}

func TestCloseLeavesNoProcess(t *testing.T) { eachChannel(t, testCloseLeavesNoProcess) }

func testCloseLeavesNoProcess(t *testing.T, ch string) {
	p := startMD5Over(t, ch, md5hex(newCert(t)), host.Config{})
	pid := p.Pid()
	if !alive(pid) {
		t.Fatal("plugin not running")
	}
	p.Close()
	if !wait.Until(3*time.Second, func() bool { return !alive(pid) }) {
		t.Fatalf("plugin %d still running after Close", pid)
	}
	if _, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{newCert(t)}}); !errors.Is(err, host.ErrClosed) {
		t.Fatalf("Verify after Close: %v, want ErrClosed", err)
	}
}
