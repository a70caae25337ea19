package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/internal/testbin"
)

// TestPluginDescriptionIsEscaped is the attack of a plugin whose Describe
// answer (name, version, summary, an option's name and description)
// carries terminal escapes: `tlspin verifiers NAME` printed it raw. Each
// field must be shown escaped, and still shown.
func TestPluginDescriptionIsEscaped(t *testing.T) {
	plugin := testbin.Build(t, "./cmd/tlspin/cli/testdata/plugins/misbehave", "tlspin-verifier-misbehave-escape")
	out, errOut, code := run(t, "verifiers", plugin)
	if code != 0 {
		t.Fatalf("exit code %d, stderr %q", code, errOut)
	}
	if strings.ContainsAny(out+errOut, "\x1b\x07\r") {
		t.Fatalf("ATTACK: control characters reached the terminal raw: %q", out+errOut)
	}
	const escaped = `\x1b]0;pwned\x07\x1b[2J\x0dtlspin: sent`
	for _, tt := range []struct{ field, want string }{
		{"name", "n" + escaped + " (version"},
		{"version", "(version v" + escaped + "): "},
		{"summary", ": s" + escaped + "\nfrom: "},
		{"option name", "  o" + escaped + "\n"},
		{"option description", "      d" + escaped + "\n"},
	} {
		t.Run(tt.field, func(t *testing.T) {
			if !strings.Contains(out, tt.want) {
				t.Errorf("the %s is not shown escaped: want %q in %q", tt.field, tt.want, out)
			}
		})
	}
}

// TestPluginFileNamesAreEscaped: `tlspin verifiers` lists the plugins it
// finds by their file names, which whoever could write a plugin directory
// chose; a name with terminal escapes is shown escaped.
func TestPluginFileNamesAreEscaped(t *testing.T) {
	dir := t.TempDir()
	name := "tlspin-verifier-a\x1b]0;pwned\x07b"
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\nexit 1\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runEnv(t, []string{"TLSPIN_PLUGIN_PATH="}, "--plugin-dir", dir, "verifiers")
	if code != 0 {
		t.Fatalf("exit code %d, stderr %q", code, errOut)
	}
	if strings.ContainsAny(out+errOut, "\x1b\x07") {
		t.Fatalf("ATTACK: control characters reached the terminal raw: %q", out+errOut)
	}
	if !strings.Contains(out, `a\x1b]0;pwned\x07b`) {
		t.Errorf("the plugin is not listed, escaped:\n%s", out)
	}
}
