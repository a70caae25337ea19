// Package checkrun runs the real `tlspin verifiers check --json` for the
// tests of example plugins, and fails the test unless the plugin passes
// every conformance item.
package checkrun

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/conformance"
	"github.com/tlspin/tlspin/internal/testbin"
)

// Pass runs `tlspin verifiers check --json ARGS...` (ARGS ends with the
// plugin's NAME) from dir with a temporary TMPDIR, and fails the test
// unless it exits 0 and reports every item of conformance.Items, in order,
// as passed. skips names the items that must be skipped instead (an item
// that does not apply to the plugin), each with a text its detail
// contains. It returns the report.
func Pass(t testing.TB, dir string, skips map[string]string, args ...string) *conformance.Report {
	t.Helper()
	cmd := exec.Command(testbin.Tlspin(t), append([]string{"verifiers", "check", "--json", "--samples", "20"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	var rep conformance.Report
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		t.Fatalf("tlspin verifiers check: %v, stdout not JSON (%v):\n%s\nstderr:\n%s", err, jerr, stdout.Bytes(), stderr.Bytes())
	}
	if err != nil {
		t.Errorf("tlspin verifiers check: %v\nstderr:\n%s", err, stderr.Bytes())
	}
	if len(rep.Results) != len(conformance.Items) {
		t.Errorf("%d results, want one per item (%d)", len(rep.Results), len(conformance.Items))
	}
	for i, r := range rep.Results {
		want, detail := conformance.Pass, ""
		if d, ok := skips[r.Item]; ok {
			want, detail = conformance.Skip, d
		}
		if i < len(conformance.Items) && r.Item != conformance.Items[i].Name {
			t.Errorf("result %d is %s, want %s", i, r.Item, conformance.Items[i].Name)
		}
		if r.Status != want || !strings.Contains(r.Detail, detail) {
			t.Errorf("%s %s: %s; want %s %s", strings.ToUpper(string(r.Status)), r.Item, r.Detail, strings.ToUpper(string(want)), detail)
		}
	}
	return &rep
}
