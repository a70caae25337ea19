package host

import (
	"context"
	"fmt"

	"github.com/tlspin/tlspin/core/verify"
)

var _ verify.Committer = (*Plugin)(nil)

// Commit tells the plugin that a handshake it allowed with a pending
// commit has succeeded, bounded by the verify timeout. It goes to the
// running instance: after a restart the new process decides again, as
// Commit requires. A failed commit records nothing, and is not retried:
// the connection it followed, allowed on condition of the record, is
// then rejected by the host (tlspin's recording judges the policy again).
func (p *Plugin) Commit(ctx context.Context, req *verify.Request) (*verify.CommitResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.VerifyTimeout)
	defer cancel()
	inst, req, err := p.instanceFor(ctx, p.cfg.VerifyTimeout, req)
	if err != nil {
		return nil, err
	}
	r, err := inst.v.Commit(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("host: verifier %q: commit: %w", p.spec.Name, err)
	}
	return r, nil
}
