package cli

import (
	"errors"
	"strings"
	"testing"
)

// TestCheckServerName: the names a server has pass, those it cannot have
// are usage errors.
func TestCheckServerName(t *testing.T) {
	label := strings.Repeat("a", 63)
	longest := strings.Join([]string{label, label, label, strings.Repeat("b", 61)}, ".") // 253 bytes
	tests := []struct {
		name string
		ok   bool
	}{
		{"", true},
		{"localhost", true},
		{"example.com", true},
		{"example.com.", true},
		{"Example.COM", true},
		{"x_y.internal", true},
		{"xn--caf-dma.example", true},
		{"192.0.2.1", true},
		{"::1", true},
		{"2001:db8::1", true},
		{longest, true},
		{longest + "b", false},
		{label + "a.example", false},
		{"a b", false},
		{"a..b", false},
		{".example", false},
		{"example..", false},
		{".", false},
		{"*.example", false},
		{"host:443", false},
		{"[::1]", false},
		{"https://example.com", false},
		{"café.example", false},
		{"a\x00b", false},
	}
	for _, tt := range tests {
		err := checkServerName(tt.name)
		var ue usageError
		switch {
		case tt.ok && err != nil:
			t.Errorf("checkServerName(%q) = %v, want nil", tt.name, err)
		case !tt.ok && !errors.As(err, &ue):
			t.Errorf("checkServerName(%q) = %v, want a usage error", tt.name, err)
		case !tt.ok && !strings.Contains(err.Error(), "--server-name \""):
			t.Errorf("checkServerName(%q) = %v, want it to quote the flag's value", tt.name, err)
		}
	}
}
