package cli_test

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
)

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// TestJSONStyle: every --json document uses snake_case keys throughout.
func TestJSONStyle(t *testing.T) {
	dir := t.TempDir()
	certFile := filepath.Join(dir, "c.pem")
	if _, stderr, code := inProcess(t, "", "cert", "--type", "ecdsa", "--out", certFile); code != cli.ExitOK {
		t.Fatalf("cert: %s", stderr)
	}
	for _, args := range [][]string{
		{"verifiers", "--json"},
		{"verifiers", "spkipin", "--json"},
		{"verifiers", "tofu", "--json"},
		{"version", "--json"},
		{"fingerprint", "--json", "--chain", certFile},
	} {
		stdout, stderr, code := run(t, args...)
		if code != cli.ExitOK {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		var doc any
		if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stdout)
		}
		checkKeys(t, args, doc)
	}
}

func checkKeys(t *testing.T, args []string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if !snakeCase.MatchString(k) {
				t.Errorf("%v: key %q is not snake_case", args, k)
			}
			checkKeys(t, args, x)
		}
	case []any:
		for _, x := range v {
			checkKeys(t, args, x)
		}
	}
}
