package pythonverifier_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/testpy"
	"github.com/tlspin/tlspin/internal/wait"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testpy.Cleanup()
	testbin.Cleanup()
	os.Exit(code)
}

// needPython skips the test when Debian's Python lacks the modules the
// plugin needs, except in CI, where they must be installed.
func needPython(t *testing.T) { testpy.Need(t, "cryptography") }

// pluginDir returns a plugin directory holding tlspin-verifier-pyspki, run
// by a Python that has the SDK installed (testpy).
func pluginDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testpy.Plugin(t, "tlspin-verifier-pyspki", dir)
	return dir
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func config(t *testing.T) host.Config {
	return host.Config{
		Logger:       hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Debug}),
		Env:          host.PluginEnv(testEnv(t)),
		StartTimeout: 20 * time.Second,
	}
}

// testEnv is the test's environment with debug logs and a temporary
// directory that is removed after the test (a plugin killed by the host
// cannot remove its socket).
func testEnv(t *testing.T) func(string) string {
	tmp := t.TempDir()
	return func(k string) string {
		switch k {
		case "TLSPIN_LOG_LEVEL":
			return "debug"
		case "TMPDIR":
			return tmp
		}
		return os.Getenv(k)
	}
}

func findPyspki(t *testing.T) host.Found {
	t.Helper()
	f, err := (&host.Finder{PluginDirs: []string{pluginDir(t)}}).Find("pyspki")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newCert(t *testing.T, dns string) []byte {
	t.Helper()
	_, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, SANs: []string{dns}})
	if err != nil {
		t.Fatal(err)
	}
	return c.Raw
}

// spkiPin is the curl form of a certificate's SPKI pin.
func spkiPin(t *testing.T, der []byte) string {
	t.Helper()
	c, err := certs.ParseCertificates(der)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(c[0].RawSubjectPublicKeyInfo)
	return "sha256//" + base64.StdEncoding.EncodeToString(s[:])
}

func TestPythonVerifierThroughHost(t *testing.T) {
	needPython(t)
	good, other := newCert(t, "api.example.com"), newCert(t, "api.example.com")
	found := findPyspki(t)
	if found.Source != host.SourcePluginDir {
		t.Fatalf("found %+v; want it from the plugin dir", found)
	}
	p, err := host.Start(context.Background(), found.Spec(verify.Options{"pin": {spkiPin(t, good)}, "server-name": {"*.example.com"}}), config(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d, err := p.Describe(context.Background())
	if err != nil || d.Name != "pyspki" || len(d.Options) != 2 || !d.Options[0].Required || !d.Options[0].Repeated {
		t.Fatalf("Describe = %+v, %v", d, err)
	}
	tests := []struct {
		name       string
		chain      [][]byte
		serverName string
		allow      bool
		reason     string
	}{
		{"pinned key", [][]byte{good}, "api.example.com", true, "is pinned"},
		{"other key", [][]byte{other}, "api.example.com", false, "to trust it: --verifier pyspki:pin=" + spkiPin(t, other)},
		{"pinned key, wrong server name", [][]byte{good}, "api.example.org", false, `server name 'api.example.org' does not match`},
		{"no certificate", nil, "api.example.com", false, "no certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := p.Verify(context.Background(), &verify.Request{PeerChain: tc.chain, ServerName: tc.serverName, Side: verify.ClientVerifiesServer})
			if err != nil {
				t.Fatal(err)
			}
			if v.Allow != tc.allow || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("verdict allow=%v reason %q; want allow=%v, reason containing %q", v.Allow, v.Reason, tc.allow, tc.reason)
			}
			if tc.allow && (v.Matched != spkiPin(t, good) || v.CacheFor != 5*time.Minute) {
				t.Errorf("matched %q, cache for %s; want the pin as given and 5m", v.Matched, v.CacheFor)
			}
		})
	}
	// Garbage in the chain is a rejection; the plugin stays up.
	pid := p.Pid()
	if v, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{[]byte("not DER")}}); err != nil || v.Allow || !strings.Contains(v.Reason, "does not parse") {
		t.Errorf("garbage certificate: %+v, %v; want a rejection saying it does not parse", v, err)
	}
	if v, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{good}, ServerName: "a.example.com"}); err != nil || !v.Allow || p.Pid() != pid {
		t.Errorf("after garbage: %+v, %v, pid %d→%d; want allow from the same process", v, err, pid, p.Pid())
	}
}

func TestPythonVerifierBadOptions(t *testing.T) {
	needPython(t)
	tests := []struct {
		name   string
		opts   verify.Options
		quoted string
	}{
		{"no pin", verify.Options{}, `"pin"`},
		{"bad pin", verify.Options{"pin": {"sha256//tooshort"}}, `"sha256//tooshort"`},
		{"unknown option", verify.Options{"pin": {strings.Repeat("ab", 32)}, "colour": {"red"}}, `"colour"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := host.Start(context.Background(), findPyspki(t).Spec(tc.opts), config(t))
			if err == nil {
				p.Close()
				t.Fatal("started with a bad option")
			}
			if !errors.Is(err, verify.ErrBadOption) || !strings.Contains(err.Error(), tc.quoted) {
				t.Fatalf("err = %v; want a bad-option error quoting %s", err, tc.quoted)
			}
		})
	}
}

func TestPythonVerifierStopsAndRestarts(t *testing.T) {
	needPython(t)
	good := newCert(t, "a.example")
	p, err := host.Start(context.Background(), findPyspki(t).Spec(verify.Options{"pin": {spkiPin(t, good)}}), config(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pid := p.Pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !wait.Until(20*time.Second, func() bool { n := p.Pid(); return n != 0 && n != pid }) {
		t.Fatal("python plugin not restarted after SIGKILL")
	}
	if v, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{good}}); err != nil || !v.Allow {
		t.Fatalf("after restart: %+v, %v", v, err)
	}
	pid = p.Pid()
	p.Close()
	if !wait.Until(5*time.Second, func() bool { return syscall.Kill(pid, 0) != nil }) {
		t.Fatalf("python plugin %d still running after Close", pid)
	}
}

// TestPythonUnitTests runs the example's own unit tests (test_pyspki.py),
// written with the SDK's test harness, under the installed SDK.
func TestPythonUnitTests(t *testing.T) {
	needPython(t)
	cmd := exec.Command(testpy.Python(t), "-m", "unittest", "-v", "test_pyspki")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("python unit tests: %v", err)
	}
	if strings.Contains(string(out), "Ran 0 tests") {
		t.Fatal("python found no unit tests")
	}
}
