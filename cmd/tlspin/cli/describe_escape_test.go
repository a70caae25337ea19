package cli_test

import (
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
