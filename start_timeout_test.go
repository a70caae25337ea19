package tlspin_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/testbin"
)

// TestStartTimeoutBoundsTheWholeStart: WithStartTimeout bounds starting
// one verifier, as documented, not each step of it. The plugin here
// answers Describe in 1.5 s and Configure in 1.5 s, each within the 2 s
// timeout and together not: Start used to wait for it all, since each
// step had a start timeout of its own (three in all, with the launch
// handshake), and it now fails at the timeout.
func TestStartTimeoutBoundsTheWholeStart(t *testing.T) {
	const timeout = 2 * time.Second // the plugin's two answers take 3 s
	plugin := testbin.Build(t, "./cmd/tlspin/cli/testdata/plugins/misbehave", "tlspin-verifier-misbehave-slow")
	begun := time.Now()
	v, err := tlspin.StartWith(context.Background(), []string{"misbehave-slow:mode=allow"},
		tlspin.WithPluginDirs(filepath.Dir(plugin)), tlspin.WithStartTimeout(timeout))
	took := time.Since(begun)
	if err == nil {
		v.Close()
		t.Fatalf("Start succeeded after %s, with a start timeout of %s", took.Round(time.Millisecond), timeout)
	}
	if took > timeout+timeout/2 {
		t.Errorf("Start failed after %s, with a start timeout of %s: %v", took.Round(time.Millisecond), timeout, err)
	}
	t.Log(err)
}
