package verifiers_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/verifiers"
	"github.com/tlspin/tlspin/verifiers/md5pin"
)

func TestRegistry(t *testing.T) {
	var r verifiers.Registry
	mk := func() verify.Verifier { return md5pin.New(nil) }
	if err := r.Register("md5pin", mk); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    verifiers.Constructor
		want string
	}{
		{"md5pin", mk, `"md5pin" registered twice`},
		{"", mk, `invalid name ""`},
		{"a:b", mk, `invalid name "a:b"`},
		{"nilc", nil, `nil constructor for "nilc"`},
	}
	for _, tc := range tests {
		if err := r.Register(tc.name, tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Register(%q) = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := r.Lookup("nosuch"); !errors.Is(err, verifiers.ErrUnknown) || !strings.Contains(err.Error(), "built-in: md5pin") {
		t.Errorf("Lookup(nosuch) = %v, want an error listing md5pin", err)
	}
	v1, _ := r.Lookup("md5pin")
	v2, _ := r.Lookup("md5pin")
	if v1 == v2 {
		t.Error("Lookup returned the same instance twice; each caller needs its own")
	}
}
