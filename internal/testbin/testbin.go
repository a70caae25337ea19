// Package testbin builds binaries once per test process: the tlspin binary,
// so that tests exercise built-in verifiers through real plugin processes,
// and test plugins kept under testdata directories.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

type result struct {
	path string
	err  error
	out  []byte
}

var builds struct {
	mu   sync.Mutex
	dir  string
	done map[string]*result
}

// Tlspin returns the path of a tlspin binary built from ./cmd/tlspin, with
// tlspin-builtins of the same build next to it: built-in verifiers run
// over the direct protocol, as after `go install ./cmd/...`.
func Tlspin(t testing.TB) string {
	t.Helper()
	return Build(t, "./cmd/tlspin ./cmd/tlspin-builtins", "tlspin")
}

// TlspinAlone returns the path of a tlspin binary with nothing next to it:
// built-in verifiers run by re-executing it, over go-plugin's gRPC, as
// after `go run ./cmd/tlspin`.
func TlspinAlone(t testing.TB) string {
	t.Helper()
	return Build(t, "./cmd/tlspin", "tlspin")
}

// Build builds the main package pkg (a path relative to the module root,
// testdata directories allowed) into a binary called name, once per test
// process, and returns its path. pkg may list several main packages,
// separated by spaces: they are built into one directory, each under its
// own name, and the path returned is name's. Binaries live in one temporary directory
// removed by Cleanup (call it from TestMain after m.Run).
func Build(t testing.TB, pkg, name string) string {
	t.Helper()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.done == nil {
		builds.done = map[string]*result{}
	}
	key := pkg + "\x00" + name
	r, ok := builds.done[key]
	if !ok {
		r = build(pkg, name)
		builds.done[key] = r
	}
	if r.err != nil {
		t.Fatalf("testbin: building %s: %v\n%s", pkg, r.err, r.out)
	}
	return r.path
}

func build(pkg, name string) *result {
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return &result{err: err}
	}
	if builds.dir == "" {
		if builds.dir, err = os.MkdirTemp("", "tlspin-bin-"); err != nil {
			return &result{err: err}
		}
	}
	dir := filepath.Join(builds.dir, strings.NewReplacer("/", "_", ".", "_", " ", "+").Replace(pkg))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &result{err: err}
	}
	r := &result{path: filepath.Join(dir, name)}
	pkgs := strings.Fields(pkg)
	out := r.path
	if len(pkgs) > 1 {
		out = dir + string(filepath.Separator)
	}
	// Without VCS information, as on a machine whose GOFLAGS say so: the
	// same builds whatever the checkout's state. Static, as the README
	// installs them (CGO_ENABLED=0).
	cmd := exec.Command("go", append([]string{"build", "-buildvcs=false", "-o", out}, pkgs...)...)
	cmd.Dir = strings.TrimSpace(string(root))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	r.out, r.err = cmd.CombinedOutput()
	return r
}

// Main runs the tests of a package that builds binaries and removes them
// afterwards: call it as the whole of TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Cleanup removes every built binary.
func Cleanup() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
		builds.dir = ""
		builds.done = nil
	}
}
