package printable_test

import (
	"testing"

	"github.com/tlspin/tlspin/internal/printable"
)

func TestEscape(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"CN=server,O=Example", "CN=server,O=Example"},
		{"café, Ωmega, 東京", "café, Ωmega, 東京"},
		{`a\b`, `a\b`},
		{"x\x1b]0;pwned\x07\x1b[2J\rtlspin: sent", `x\x1b]0;pwned\x07\x1b[2J\x0dtlspin: sent`},
		{"line\nforged line\t", `line\x0aforged line\x09`},
		{"del\x7f c1\u0085\u009b", `del\x7f c1\x85\x9b`},
		{"evil\u202egnp.exe", `evil\u202egnp.exe`},
		{"zero\u200bwidth\u2066", `zero\u200bwidth\u2066`},
		{"bad \xff\xfe utf-8", `bad \xff\xfe utf-8`},
	} {
		if got := printable.Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
