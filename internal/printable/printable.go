// Package printable makes text that a peer or a plugin controls safe to
// show on a terminal. A certificate's names and subject, a verifier's
// reason and a plugin's log line can carry escape sequences (retitle the
// window, clear the screen), a carriage return that overwrites the line
// with a forged one, a newline that adds one, or bidirectional controls
// that reorder what is shown; Escape writes each such character as a
// visible escape instead.
package printable

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape returns s with control characters (C0, DEL, C1), Unicode format
// characters (bidirectional controls, zero-width ones) and bytes that are
// not UTF-8 written as \xHH or \uHHHH. Other text, non-ASCII letters
// included, is kept as it is.
func Escape(s string) string {
	if strings.IndexFunc(s, unsafe) < 0 && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafe(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafe(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func unsafe(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}
