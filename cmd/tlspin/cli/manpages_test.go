package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestManPagesCurrent fails when docs/man is not what the command tree
// generates now: run `go generate ./cmd/tlspin/cli` and commit the result.
func TestManPagesCurrent(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := inProcess(t, "", "__man", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	const committed = "../../../docs/man"
	want, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	have, _ := filepath.Glob(filepath.Join(committed, "*.1"))
	if len(want) < 10 {
		t.Fatalf("only %d pages generated", len(want))
	}
	if len(want) != len(have) {
		t.Errorf("docs/man has %d pages, the command tree makes %d", len(have), len(want))
	}
	for _, p := range want {
		got, err := os.ReadFile(filepath.Join(committed, filepath.Base(p)))
		if err != nil {
			t.Errorf("missing page: %v", err)
			continue
		}
		if !bytes.Equal(got, mustReadFile(t, p)) {
			t.Errorf("docs/man/%s is stale", filepath.Base(p))
		}
	}
	if t.Failed() {
		t.Log("regenerate with: go generate ./cmd/tlspin/cli")
	}
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
