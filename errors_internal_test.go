package tlspin

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tlspin/tlspin/core/direct"
	"github.com/tlspin/tlspin/core/rpc"
)

// TestVerdictFailed: any error means the verifier could not decide,
// including its own error over either channel (gRPC for other plugins, the
// direct protocol for the built-ins): a verdict is the only rejection.
func TestVerdictFailed(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		failed bool
	}{
		{"no error", nil, false},
		{"the verifier's own error over gRPC", fmt.Errorf("host: %w", &rpc.RemoteError{Message: "no"}), true},
		{"the verifier's own error over the direct protocol", fmt.Errorf("host: %w", &direct.RemoteError{Message: "no"}), true},
		{"a crash", fmt.Errorf("host: %w", direct.ErrTransport), true},
		{"garbage", direct.ErrGarbage, true},
		{"a timeout", context.DeadlineExceeded, true},
		{"anything else", errors.New("plugin exited"), true},
	} {
		if got := (Verdict{Err: tt.err}).failed(); got != tt.failed {
			t.Errorf("%s: failed() = %v, want %v", tt.name, got, tt.failed)
		}
	}
}
