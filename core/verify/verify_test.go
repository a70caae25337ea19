package verify_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tlspin/tlspin/core/verify"
)

func TestCheckOptions(t *testing.T) {
	d := &verify.Description{Name: "x", Options: []verify.Option{
		{Name: "pin", Required: true, Repeated: true},
		{Name: "chain"},
	}}
	many := &verify.Description{Name: "x"}
	for i := range 100_000 {
		many.Options = append(many.Options, verify.Option{Name: fmt.Sprintf("o%05d", i)})
	}
	tests := []struct {
		name string
		d    *verify.Description // nil: d
		opts verify.Options
		want string // "" means no error
	}{
		{"ok", nil, verify.Options{"pin": {"a", "b"}, "chain": {"leaf"}}, ""},
		{"missing required", nil, verify.Options{"chain": {"leaf"}}, `option "pin": x requires it`},
		{"unknown", nil, verify.Options{"pin": {"a"}, "colour": {"red"}}, `option "colour": x does not take this option (it takes: chain, pin)`},
		{"repeated once-only", nil, verify.Options{"pin": {"a"}, "chain": {"leaf", "any"}}, `option chain="leaf,any": given more than once`},
		// A plugin declares as many options as it likes; the error
		// names a few, not a megabyte of them.
		{"unknown among many", many, verify.Options{"colour": {"red"}}, `(it takes: o00000, o00001, o00002, o00003, o00004, o00005, o00006, o00007, o00008, o00009, o00010, o00011, o00012, o00013, o00014, o00015 and 99984 more)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			desc := tc.d
			if desc == nil {
				desc = d
			}
			err := verify.CheckOptions(desc, tc.opts)
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

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		same bool
	}{
		{"", true},
		{strings.Repeat("a", verify.MaxTextLen), true},
		{strings.Repeat("a", verify.MaxTextLen+1), false},
		{strings.Repeat("€", verify.MaxTextLen), false},
	}
	for _, tc := range tests {
		got := verify.Truncate(tc.in)
		if (got == tc.in) != tc.same {
			t.Errorf("Truncate(%d bytes) changed = %v, want %v", len(tc.in), got != tc.in, !tc.same)
		}
		if !utf8.ValidString(got) || len(got) > verify.MaxTextLen {
			t.Errorf("Truncate(%d bytes) = %d bytes, valid %v", len(tc.in), len(got), utf8.ValidString(got))
		}
		// A text cut once (by a plugin's SDK) is not cut again by the host.
		if again := verify.Truncate(got); again != got {
			t.Errorf("Truncate cut a truncated text again: %q", again[max(0, len(again)-40):])
		}
	}
}

func TestCleanVerdict(t *testing.T) {
	long := strings.Repeat("é", 3000)
	tests := []struct {
		name    string
		in      *verify.Verdict
		want    *verify.Verdict // nil: an error
		wantErr string
	}{
		{"plain", &verify.Verdict{Allow: true, Reason: "ok", Matched: "m", CacheFor: time.Minute, Commit: true},
			&verify.Verdict{Allow: true, Reason: "ok", Matched: "m", CacheFor: time.Minute, Commit: true}, ""},
		{"cache time capped", &verify.Verdict{CacheFor: 1 << 62}, &verify.Verdict{CacheFor: verify.MaxCacheFor}, ""},
		{"long texts", &verify.Verdict{Reason: long, Matched: long},
			&verify.Verdict{Reason: verify.Truncate(long), Matched: verify.Truncate(long)}, ""},
		{"negative cache time", &verify.Verdict{CacheFor: -time.Second}, nil, "negative cache time -1s"},
		{"nil", nil, nil, "no verdict"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := verify.CleanVerdict(tc.in)
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("CleanVerdict = %+v, %v; want an error saying %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || *got != *tc.want {
				t.Fatalf("CleanVerdict = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
