package cli

import "testing"

func TestIsHostName(t *testing.T) {
	for s, want := range map[string]bool{
		"localhost": true, "example.com": true, "*.example.com": true, "a_b.internal": true, "host.": true,
		"xn--bcher-kva.example": true,
		"":                      false, "https://foo.example/": false, "not a name!": false, "-bad.example": false,
		"bad-.example": false, "a..b": false, "*": false, "a.*.example": false, "exa mple.com": false,
	} {
		if got := isHostName(s); got != want {
			t.Errorf("isHostName(%q) = %v, want %v", s, got, want)
		}
	}
}
