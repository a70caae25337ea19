package host_test

import (
	"testing"

	"github.com/tlspin/tlspin/internal/e2e"
)

// TestSDKPluginChildrenDieWithHost kills a host with SIGKILL while its Go
// SDK plugin has a child process: the plugin and the child must both end.
func TestSDKPluginChildrenDieWithHost(t *testing.T) {
	e2e.AssertChildrenDieWithHost(t, probeBinary(t), "child")
}
