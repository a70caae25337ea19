package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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

// committer records a commit if its context is still live when asked, as
// a plugin does; with hang set it blocks until the context ends instead.
type committer struct {
	fixed
	hang     bool
	recorded chan struct{}
}

func (c *committer) Commit(ctx context.Context, _ *verify.Request) (*verify.CommitResponse, error) {
	if c.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	close(c.recorded)
	return &verify.CommitResponse{}, nil
}

// TestCommitIsNotHeldUpByAHungMember: a member whose commit hangs (a
// plugin restarting, or stuck) does not use up the time the others had
// to record: with require any, tofu beside a crash-looping verifier would
// otherwise allow every key as a first use and never record one.
func TestCommitIsNotHeldUpByAHungMember(t *testing.T) {
	for _, mode := range []policy.Mode{policy.All, policy.Any} {
		t.Run(string(mode), func(t *testing.T) {
			hung := &committer{fixed: broken, hang: true}
			tofu := &committer{fixed: first, recorded: make(chan struct{})}
			p, err := policy.New(mode, policy.Member{Name: "hung", V: hung}, policy.Member{Name: "tofu", V: tofu})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			_, err = p.Commit(ctx, &verify.Request{PeerChain: [][]byte{[]byte("leaf")}})
			select {
			case <-tofu.recorded:
			default:
				t.Fatalf("the member after a hung one recorded nothing (commit: %v)", err)
			}
			if err == nil || !strings.Contains(err.Error(), "hung:") {
				t.Errorf("commit error %v does not name the hung member", err)
			}
		})
	}
}
