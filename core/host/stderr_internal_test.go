package host

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestPluginStderrIsEscaped is the attack of a plugin that writes
// terminal escapes and a carriage return to its stderr, plain or in an
// hclog JSON message, to forge the host's log lines: the host logs them
// escaped, at the level the plugin gave.
func TestPluginStderrIsEscaped(t *testing.T) {
	for _, tt := range []struct{ name, line, want string }{
		{"plain line", "[WARN] \x1b[2J\rtlspin: sent; server verified OK", `[WARN] \x1b[2J\x0dtlspin: sent`},
		{"hclog JSON message", `{"@level":"warn","@message":"\u001b]0;pwned\u0007\rforged","n":1}`, `\x1b]0;pwned\x07\x0dforged`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			s := &pluginStderr{log: hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Trace})}
			s.Write([]byte(tt.line + "\n"))
			got := out.String()
			if strings.ContainsAny(got, "\x1b\x07\r") {
				t.Fatalf("ATTACK: raw control characters in the host's log: %q", got)
			}
			if !strings.Contains(got, tt.want) || !strings.Contains(got, "[WARN]") {
				t.Fatalf("logged %q, want it to contain %q at warn", got, tt.want)
			}
		})
	}
}
