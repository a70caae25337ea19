package cli_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryCommandHasExamples: the README says every command's --help has
// examples. The man pages are made from the help, so each must have an
// EXAMPLE section; cobra's per-shell completion commands, whose help is
// cobra's own instructions, aside.
func TestEveryCommandHasExamples(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := inProcess(t, "", "__man", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	if len(pages) < 10 {
		t.Fatalf("only %d pages generated", len(pages))
	}
	for _, p := range pages {
		name := strings.TrimSuffix(filepath.Base(p), ".1")
		if strings.HasPrefix(name, "tlspin-completion-") {
			continue
		}
		if !bytes.Contains(mustReadFile(t, p), []byte("\n.SH EXAMPLE")) {
			t.Errorf("docs/man/%s.1 has no EXAMPLE section: give the command examples in its --help", name)
		}
	}
}
