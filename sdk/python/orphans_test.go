package pythonsdk_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/testpy"
)

// probe is a plugin that starts a child and names its pid in Describe.
const probe = `import subprocess
import tlspin_sdk as sdk
from tlspin_sdk import pb

child = subprocess.Popen(["sleep", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Probe:
    def describe(self):
        return pb.DescribeResponse(name="probe", version="1", summary=str(child.pid))

    def configure(self, options):
        return None

    def verify(self, request):
        return sdk.reject("a probe")


sdk.serve(Probe())
`

// TestChildrenDieWithHost kills a host with SIGKILL while its Python
// plugin has a child process: the plugin and the child must both end (the
// kernel's parent-death signal reaches the plugin, which kills its group).
func TestChildrenDieWithHost(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc: the parent-death signal is Linux's")
	}
	script := filepath.Join(t.TempDir(), "probe.py")
	if err := os.WriteFile(script, []byte(probe), 0o600); err != nil {
		t.Fatal(err)
	}
	e2e.AssertChildrenDieWithHost(t, testpy.Python(t), script)
}
