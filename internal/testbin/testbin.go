// Package testbin builds the tlspin binary once per test process, so that
// tests exercise built-in verifiers through real plugin processes.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var build struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// Tlspin returns the path of a freshly built tlspin binary. The binary is
// built once per test process into a temporary directory that is removed
// by Cleanup (call it from TestMain after m.Run).
func Tlspin(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
		if err != nil {
			build.err = err
			return
		}
		dir, err := os.MkdirTemp("", "tlspin-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "tlspin")
		cmd := exec.Command("go", "build", "-o", build.path, "./cmd/tlspin")
		cmd.Dir = strings.TrimSpace(string(root))
		build.out, build.err = cmd.CombinedOutput()
	})
	if build.err != nil {
		t.Fatalf("testbin: building tlspin: %v\n%s", build.err, build.out)
	}
	return build.path
}

// Cleanup removes the built binary, if any.
func Cleanup() {
	if build.path != "" {
		os.RemoveAll(filepath.Dir(build.path))
	}
}
