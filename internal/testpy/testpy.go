// Package testpy gives tests a Python with the tlspin SDK (sdk/python)
// installed the way a plugin author installs it: `pip install --no-deps`
// into a virtual environment that also sees Debian's python3-grpcio and
// python3-protobuf. The environment is made once per test process; call
// Cleanup from TestMain after m.Run.
package testpy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// System is the interpreter the environment is made from: Debian's, where
// python3-grpcio, python3-protobuf and python3-pip install.
const System = "/usr/bin/python3"

var venv struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

// Need skips the test when System lacks a module the tests need (the SDK's
// grpc and protobuf, pip, and any extra modules named), except in CI (CI
// set), where .ci/run installs them and their absence is a failure.
func Need(t testing.TB, modules ...string) {
	t.Helper()
	mods := append([]string{"grpc", "google.protobuf", "pip"}, modules...)
	out, err := exec.Command(System, "-c", "import "+strings.Join(mods, ", ")).CombinedOutput()
	if err == nil {
		return
	}
	msg := "Python modules missing (apt-get install python3-grpcio python3-protobuf python3-pip): " + strings.TrimSpace(string(out))
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Python returns the path of the environment's interpreter, with the SDK
// installed from sdk/python by `python -m pip install --no-deps`.
func Python(t testing.TB) string {
	t.Helper()
	Need(t)
	venv.once.Do(install)
	if venv.err != nil {
		t.Fatalf("testpy: installing the Python SDK: %v\n%s", venv.err, venv.out)
	}
	return filepath.Join(venv.dir, "bin", "python")
}

// SDKDir returns the directory of the Python SDK (sdk/python).
func SDKDir(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "sdk", "python")
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	return strings.TrimSpace(string(out)), err
}

func install() {
	root, err := moduleRoot()
	if err != nil {
		venv.err = err
		return
	}
	if venv.dir, venv.err = os.MkdirTemp("", "tlspin-venv-"); venv.err != nil {
		return
	}
	// --without-pip: Debian's venv has no ensurepip unless python3-venv
	// is installed; the system pip, seen through the system site, installs
	// into the environment all the same.
	steps := [][]string{
		{System, "-m", "venv", "--system-site-packages", "--without-pip", venv.dir},
		{filepath.Join(venv.dir, "bin", "python"), "-m", "pip", "install", "--no-deps", "--no-index",
			"--disable-pip-version-check", "--no-cache-dir", "--quiet", filepath.Join(root, "sdk", "python")},
	}
	for _, s := range steps {
		cmd := exec.Command(s[0], s[1:]...)
		cmd.Dir = venv.dir // not sdk/python: the installed package must be the one imported
		if venv.out, err = cmd.CombinedOutput(); err != nil {
			venv.err = fmt.Errorf("%s: %w", strings.Join(s, " "), err)
			return
		}
	}
}

// Plugin copies the Python plugin script src into dir under its own name,
// with its #! line pointing at the environment's interpreter (what an
// author does after installing the SDK into a virtual environment), and
// returns the copy's path.
func Plugin(t testing.TB, src, dir string) string {
	t.Helper()
	py := Python(t)
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("#!")) {
		t.Fatalf("testpy: %s has no #! line", src)
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = append([]byte("#!"+py), b[i:]...)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// Cleanup removes the environment.
func Cleanup() {
	if venv.dir != "" {
		os.RemoveAll(venv.dir)
	}
}
