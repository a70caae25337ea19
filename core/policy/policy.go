// Package policy combines several verifiers into one decision: all must
// allow (the default) or any one may. The combined rejection says which
// verifier said what.
package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/tlspin/tlspin/core/verify"
)

// Mode says how member verdicts combine.
type Mode string

const (
	// All requires every member to allow.
	All Mode = "all"
	// Any requires one member to allow.
	Any Mode = "any"
)

// ParseMode parses "all" or "any".
func ParseMode(s string) (Mode, error) {
	switch Mode(strings.ToLower(s)) {
	case All:
		return All, nil
	case Any:
		return Any, nil
	}
	return "", fmt.Errorf("policy: unknown --require %q (want all or any)", s)
}

// Member is one named verifier of a policy.
type Member struct {
	Name string
	V    verify.Decider
}

// Policy is a Decider made of members.
type Policy struct {
	mode    Mode
	members []Member
}

// New returns a policy over members; it needs at least one.
func New(mode Mode, members ...Member) (*Policy, error) {
	if len(members) == 0 {
		return nil, errors.New("policy: no verifier given")
	}
	if mode != All && mode != Any {
		return nil, fmt.Errorf("policy: unknown mode %q", string(mode))
	}
	return &Policy{mode: mode, members: members}, nil
}

// Outcome is what one member said.
type Outcome struct {
	Name    string
	Verdict *verify.Verdict
	Err     error
}

// Allowed reports whether this member allowed the peer.
func (o Outcome) Allowed() bool { return o.Err == nil && o.Verdict != nil && o.Verdict.Allow }

func (o Outcome) String() string {
	switch {
	case o.Err != nil:
		return fmt.Sprintf("%s failed, so the peer is rejected (fail closed): %v", o.Name, o.Err)
	case o.Verdict.Allow:
		if o.Verdict.Matched != "" {
			return fmt.Sprintf("%s: allowed (matched %s)", o.Name, o.Verdict.Matched)
		}
		return fmt.Sprintf("%s: allowed", o.Name)
	}
	return fmt.Sprintf("%s rejected the peer: %s", o.Name, o.Verdict.Reason)
}

// RejectError is a policy's rejection; it wraps verify.ErrRejected.
type RejectError struct {
	Mode     Mode
	Outcomes []Outcome
}

func (e *RejectError) Error() string {
	var parts []string
	for _, o := range e.Outcomes {
		if len(e.Outcomes) == 1 || !o.Allowed() {
			parts = append(parts, o.String())
		}
	}
	if len(e.Outcomes) > 1 {
		return fmt.Sprintf("peer rejected (require %s): %s", e.Mode, strings.Join(parts, "; "))
	}
	return parts[0]
}

// Unwrap makes errors.Is(err, verify.ErrRejected) true.
func (e *RejectError) Unwrap() error { return verify.ErrRejected }

// Decide runs every member (concurrently when there are several) and
// returns the outcomes and nil if the policy allows, or a *RejectError.
func (p *Policy) Decide(ctx context.Context, req *verify.Request) ([]Outcome, error) {
	out := make([]Outcome, len(p.members))
	run := func(i int) {
		m := p.members[i]
		v, err := m.V.Verify(ctx, req)
		if err == nil && v == nil {
			err = errors.New("no verdict")
		}
		out[i] = Outcome{Name: m.Name, Verdict: v, Err: err}
	}
	if len(p.members) == 1 {
		run(0)
	} else {
		var wg sync.WaitGroup
		for i := range p.members {
			wg.Go(func() { run(i) })
		}
		wg.Wait()
	}
	if p.mode.Allows(out) {
		return out, nil
	}
	return out, &RejectError{Mode: p.mode, Outcomes: out}
}

// Allows reports whether outcomes combined in mode m allow the peer.
func (m Mode) Allows(outs []Outcome) bool {
	allowed := 0
	for _, o := range outs {
		if o.Allowed() {
			allowed++
		}
	}
	return (m == All && allowed == len(outs)) || (m == Any && allowed > 0)
}

// Verify implements verify.Decider: a single combined verdict.
func (p *Policy) Verify(ctx context.Context, req *verify.Request) (*verify.Verdict, error) {
	outs, err := p.Decide(ctx, req)
	if err != nil {
		return &verify.Verdict{Allow: false, Reason: err.Error()}, nil
	}
	var matched, reasons []string
	commit := false
	for _, o := range outs {
		if !o.Allowed() {
			continue
		}
		if o.Verdict.Matched != "" {
			matched = append(matched, o.Name+"="+o.Verdict.Matched)
		}
		if o.Verdict.Reason != "" {
			reasons = append(reasons, o.Name+": "+o.Verdict.Reason)
		}
		commit = commit || o.Verdict.Commit
	}
	reason := "allowed"
	if len(reasons) > 0 {
		reason = strings.Join(reasons, "; ")
	}
	// "; " as between reasons: a verifier's own Matched may hold commas
	// (ca's "chain to X, valid for Y").
	return &verify.Verdict{Allow: true, Matched: strings.Join(matched, "; "), Reason: reason, Commit: commit}, nil
}

// Commit passes a commit on to every member that takes one, concurrently:
// a member whose commit hangs (a plugin stuck or restarting) must not use
// up the time another has to record. Each decides again
// (verify.Committer), so a member that did not ask for the commit records
// nothing. A failure is a *CommitError saying which members failed.
func (p *Policy) Commit(ctx context.Context, req *verify.Request) (*verify.CommitResponse, error) {
	e := &CommitError{Names: make([]string, len(p.members)), Errs: make([]error, len(p.members))}
	var wg sync.WaitGroup
	for i, m := range p.members {
		e.Names[i] = m.Name
		if c, ok := m.V.(verify.Committer); ok {
			wg.Go(func() {
				if _, err := c.Commit(ctx, req); err != nil {
					e.Errs[i] = err
				}
			})
		}
	}
	wg.Wait()
	if slices.ContainsFunc(e.Errs, func(err error) bool { return err != nil }) {
		return nil, e
	}
	return &verify.CommitResponse{}, nil
}

// CommitError is a failed Policy.Commit. Names and Errs have one entry
// per member, in the policy's order (as Decide's outcomes): its name, and
// the error of its commit or nil. A member whose allow asked for a commit
// (verify.Verdict.Commit) allowed only on condition of it: its failure
// takes the allow back.
type CommitError struct {
	Names []string
	Errs  []error
}

func (e *CommitError) Error() string {
	var parts []string
	for i, err := range e.Errs {
		if err != nil {
			parts = append(parts, e.Names[i]+": "+err.Error())
		}
	}
	return "policy: commit: " + strings.Join(parts, "; ")
}

// Unwrap returns the members' errors.
func (e *CommitError) Unwrap() []error {
	return slices.DeleteFunc(slices.Clone(e.Errs), func(err error) bool { return err == nil })
}
