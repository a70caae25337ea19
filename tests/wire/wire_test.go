package wire_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/testpy"
	"github.com/tlspin/tlspin/internal/wait"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	testpy.Cleanup()
	os.Exit(code)
}

// The values the doc gives; rpc.Handshake must agree.
const (
	docCookieKey   = "TLSPIN_VERIFIER_PLUGIN"
	docCookieValue = "8f1c2e0b6d7a4f3e9b5c1a2d3e4f5a6b"
)

// logs collects the host's log lines.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
	t   *testing.T
}

func (l *logs) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Log(strings.TrimSpace(string(b)))
	return l.buf.Write(b)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func startRaw(t *testing.T, mode string) (*host.Plugin, *logs, error) {
	t.Helper()
	return startPlugin(t, testbin.Build(t, "./tests/wire/testdata/rawplugin", "tlspin-verifier-raw"), "RAWPLUGIN="+mode)
}

func startPlugin(t *testing.T, path string, env ...string) (*host.Plugin, *logs, error) {
	t.Helper()
	// Named as the host names a plugin found on the path (the file's NAME).
	return startSpec(t, host.Spec{Name: strings.TrimPrefix(filepath.Base(path), host.ExecPrefix), Path: path}, env...)
}

func startSpec(t *testing.T, spec host.Spec, env ...string) (*host.Plugin, *logs, error) {
	t.Helper()
	l := &logs{t: t}
	p, err := host.Start(context.Background(), spec, host.Config{
		Logger:       hclog.New(&hclog.LoggerOptions{Output: l, Level: hclog.Trace}),
		Env:          append([]string{"TMPDIR=" + t.TempDir(), "TLSPIN_LOG_LEVEL=trace", "PATH=" + os.Getenv("PATH")}, env...),
		StartTimeout: 20 * time.Second,
	})
	return p, l, err
}

func leaf(t *testing.T) []byte {
	t.Helper()
	_, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, SANs: []string{"a.example"}})
	if err != nil {
		t.Fatal(err)
	}
	return c.Raw
}

// mustVerify checks that p answers a Verify with an acceptance.
func mustVerify(t *testing.T, p *host.Plugin) {
	t.Helper()
	v, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{leaf(t)}})
	if err != nil || !v.Allow {
		t.Fatalf("Verify = %+v, %v; want an acceptance", v, err)
	}
}

// closeAndWait closes p and reports how long Close took and whether the
// process is gone.
func closeAndWait(t *testing.T, p *host.Plugin) time.Duration {
	t.Helper()
	pid := p.Pid()
	start := time.Now()
	p.Close()
	took := time.Since(start)
	if !wait.Until(5*time.Second, func() bool { return syscall.Kill(pid, 0) != nil }) {
		t.Fatalf("plugin %d still running after Close", pid)
	}
	return took
}

// Doc: the magic cookie is TLSPIN_VERIFIER_PLUGIN=8f1c2e0b6d7a4f3e9b5c1a2d3e4f5a6b,
// in the plugin's environment.
func TestMagicCookie(t *testing.T) {
	if rpc.Handshake.MagicCookieKey != docCookieKey || rpc.Handshake.MagicCookieValue != docCookieValue {
		t.Fatalf("rpc.Handshake cookie %s=%s; the doc says %s=%s", rpc.Handshake.MagicCookieKey, rpc.Handshake.MagicCookieValue, docCookieKey, docCookieValue)
	}
	p, _, err := startRaw(t, "controller,stdio,san")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d, _ := p.Describe(context.Background())
	if d.Summary != docCookieValue {
		t.Errorf("the plugin saw %s=%q", docCookieKey, d.Summary)
	}
}

// Doc: required are the Verifier service and the Controller; Stdio and
// Health are optional (Health is never called by tlspin's host; without
// Stdio the host notes it at debug level).
func TestOptionalServices(t *testing.T) {
	tests := []struct {
		name, mode string
		debug      string
	}{
		{"all", "controller,stdio,health,san", ""},
		{"no health", "controller,stdio,san", ""},
		{"no stdio", "controller,health,san", "unknown service plugin.GRPCStdio"},
		{"verifier and controller only", "controller,san", "unknown service plugin.GRPCStdio"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, l, err := startRaw(t, tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			mustVerify(t, p)
			closeAndWait(t, p)
			out := l.String()
			// go-plugin's narration is debug level (core/host): a clean
			// exit is its line without an error.
			exited := regexp.MustCompile(`raw: plugin process exited: .*`).FindString(out)
			if strings.Contains(out, "[ERROR]") || exited == "" || strings.Contains(exited, "error=") {
				t.Errorf("want a clean exit (plugin process exited, no error) and no ERROR line; got %q", exited)
			}
			if strings.Contains(out, "[WARN]") {
				t.Errorf("unexpected warning")
			}
			if tc.debug != "" && !strings.Contains(out, tc.debug) {
				t.Errorf("want a debug line saying %q", tc.debug)
			}
		})
	}
}

// Doc: a plugin without the Controller service keeps running after the
// host's Shutdown; the host SIGKILLs it 0.5 s later and warns.
func TestNoControllerIsKilled(t *testing.T) {
	p, l, err := startRaw(t, "stdio,health,san")
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, p)
	if took := closeAndWait(t, p); took < 500*time.Millisecond {
		t.Errorf("Close returned after %s; want the host to wait 0.5 s before killing", took)
	}
	if out := l.String(); !strings.Contains(out, "[WARN]  raw: verifier plugin did not exit within the grace period after its Shutdown; killed (does it serve go-plugin's plugin.GRPCController, and exit on Shutdown even while a call of its verifier hangs?)") {
		t.Errorf("want a warning that the plugin had to be killed and why:\n%s", out)
	}
}

// Doc: on Linux the channel is plain gRPC; the host refuses a socket in
// a directory other users can enter (AutoMTLS elsewhere: a certificate
// with the DNS SAN localhost).
func TestChannel(t *testing.T) {
	if !rpc.PeerCredsSupported {
		t.Skip("AutoMTLS on this platform")
	}
	p, _, err := startRaw(t, "controller,stdio,opendir")
	if err == nil {
		p.Close()
		t.Fatal("the host accepted a plugin whose socket other users can reach")
	}
	if want := "other users can reach the socket"; !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v; want it to contain %q", err, want)
	}
}

// Doc: stdout written after the handshake is dropped silently by the host
// (a raw plugin's stdout, and a Go SDK plugin's, which go-plugin relays
// over GRPCStdio); the Python SDK points stdout at stderr, so it shows in
// the debug log.
func TestStdoutAfterHandshake(t *testing.T) {
	tests := []struct {
		name   string
		start  func(t *testing.T) (*host.Plugin, *logs, error)
		marker string
		shown  bool
	}{
		{"raw plugin", func(t *testing.T) (*host.Plugin, *logs, error) {
			return startRaw(t, "controller,stdio,san,stdout")
		}, "RAWPLUGIN-STDOUT-AFTER-HANDSHAKE", false},
		{"Go SDK", func(t *testing.T) (*host.Plugin, *logs, error) {
			return startPlugin(t, testbin.Build(t, "./tests/wire/testdata/sdkplugin", "tlspin-verifier-sdkprint"))
		}, "SDKPLUGIN-STDOUT-AFTER-HANDSHAKE", false},
		{"Python SDK", startPythonPrinter, "PYTHON-STDOUT-AFTER-HANDSHAKE", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, l, err := tc.start(t)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				mustVerify(t, p)
			}
			if p.Restarts() != 0 {
				t.Errorf("the plugin was restarted")
			}
			closeAndWait(t, p)
			if shown := strings.Contains(l.String(), tc.marker); shown != tc.shown {
				t.Errorf("marker in the host's log: %v; want %v", shown, tc.shown)
			}
		})
	}
}

// startPythonPrinter runs a Python SDK plugin that print()s in verify.
func startPythonPrinter(t *testing.T) (*host.Plugin, *logs, error) {
	t.Helper()
	testpy.Need(t)
	src := filepath.Join(t.TempDir(), "tlspin-verifier-pyprint")
	script := `#!/usr/bin/python3
import tlspin_sdk as sdk

class Printer:
    def describe(self):
        return sdk.pb.DescribeResponse(name="pyprint", version="1")
    def configure(self, options):
        pass
    def verify(self, request):
        print("PYTHON-STDOUT-AFTER-HANDSHAKE", flush=True)
        return sdk.allow("printed")

sdk.serve(Printer())
`
	if err := os.WriteFile(src, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return startPlugin(t, testpy.Plugin(t, src, t.TempDir()))
}
