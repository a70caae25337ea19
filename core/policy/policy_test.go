package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/policy"
	"github.com/tlspin/tlspin/core/verify"
)

type fixed struct {
	v   *verify.Verdict
	err error
}

func (f fixed) Verify(context.Context, *verify.Request) (*verify.Verdict, error) { return f.v, f.err }

var (
	allow  = fixed{v: &verify.Verdict{Allow: true, Matched: "pin1", Reason: "key pinned"}}
	first  = fixed{v: &verify.Verdict{Allow: true, Matched: "new", Commit: true}}
	reject = fixed{v: &verify.Verdict{Reason: "wrong pin"}}
	broken = fixed{err: errors.New("plugin died")}
	empty  = fixed{}
)

func TestPolicy(t *testing.T) {
	tests := []struct {
		name    string
		mode    policy.Mode
		members []verify.Decider
		allowed bool
		says    []string
		commit  bool
		matched string
	}{
		{"all, all allow", policy.All, []verify.Decider{allow, allow}, true, []string{"v0: key pinned; v1: key pinned"}, false, "v0=pin1; v1=pin1"},
		{"all, one asks for a commit", policy.All, []verify.Decider{allow, first}, true, nil, true, ""},
		{"any, the committer rejected", policy.Any, []verify.Decider{allow, reject}, true, []string{"v0: key pinned"}, false, ""},
		{"all, one rejects", policy.All, []verify.Decider{allow, reject}, false, []string{"require all", "v1 rejected the peer: wrong pin"}, false, ""},
		{"all, one errors", policy.All, []verify.Decider{allow, broken}, false, []string{"v1 failed, so the peer is rejected (fail closed): plugin died"}, false, ""},
		{"all, no verdict", policy.All, []verify.Decider{empty}, false, []string{"no verdict"}, false, ""},
		{"any, one allows", policy.Any, []verify.Decider{reject, allow}, true, nil, false, "v1=pin1"},
		{"any, none allows", policy.Any, []verify.Decider{reject, broken}, false, []string{"require any", "v0 rejected", "v1 failed"}, false, ""},
		{"single reject", policy.All, []verify.Decider{reject}, false, []string{"v0 rejected the peer: wrong pin"}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ms []policy.Member
			for i, d := range tc.members {
				ms = append(ms, policy.Member{Name: "v" + string(rune('0'+i)), V: d})
			}
			p, err := policy.New(tc.mode, ms...)
			if err != nil {
				t.Fatal(err)
			}
			v, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{{1}}})
			if err != nil {
				t.Fatal(err)
			}
			if v.Allow != tc.allowed {
				t.Fatalf("allow = %v, want %v (%s)", v.Allow, tc.allowed, v.Reason)
			}
			if v.Commit != tc.commit {
				t.Errorf("commit = %v, want %v", v.Commit, tc.commit)
			}
			if tc.matched != "" && v.Matched != tc.matched {
				t.Errorf("matched = %q, want %q", v.Matched, tc.matched)
			}
			_, derr := p.Decide(context.Background(), &verify.Request{})
			if !tc.allowed && !errors.Is(derr, verify.ErrRejected) {
				t.Errorf("Decide error %v does not wrap ErrRejected", derr)
			}
			for _, s := range tc.says {
				if !strings.Contains(v.Reason, s) {
					t.Errorf("reason %q lacks %q", v.Reason, s)
				}
			}
		})
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := policy.New(policy.All); err == nil {
		t.Error("no members accepted")
	}
	if _, err := policy.ParseMode("most"); err == nil || !strings.Contains(err.Error(), `"most"`) {
		t.Errorf("ParseMode(most) = %v", err)
	}
}
