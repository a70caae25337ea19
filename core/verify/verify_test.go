package verify_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/verify"
)

func TestCheckOptions(t *testing.T) {
	d := &verify.Description{Name: "x", Options: []verify.Option{
		{Name: "pin", Required: true, Repeated: true},
		{Name: "chain"},
	}}
	tests := []struct {
		name string
		opts verify.Options
		want string // "" means no error
	}{
		{"ok", verify.Options{"pin": {"a", "b"}, "chain": {"leaf"}}, ""},
		{"missing required", verify.Options{"chain": {"leaf"}}, `option "pin": x requires it`},
		{"unknown", verify.Options{"pin": {"a"}, "colour": {"red"}}, `option "colour": x does not take this option (it takes: chain, pin)`},
		{"repeated once-only", verify.Options{"pin": {"a"}, "chain": {"leaf", "any"}}, `option chain="leaf,any": given more than once`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := verify.CheckOptions(d, tc.opts)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if !errors.Is(err, verify.ErrBadOption) {
				t.Errorf("err does not wrap ErrBadOption")
			}
		})
	}
}

func TestChainDigestSeparatesCertificates(t *testing.T) {
	a := (&verify.Request{PeerChain: [][]byte{[]byte("ab"), []byte("c")}}).ChainDigest()
	b := (&verify.Request{PeerChain: [][]byte{[]byte("a"), []byte("bc")}}).ChainDigest()
	if a == b {
		t.Fatal("different chains with the same bytes share a digest")
	}
}
