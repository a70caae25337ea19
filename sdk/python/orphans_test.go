package pythonsdk_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/testpy"
	"github.com/tlspin/tlspin/internal/wait"
)

// helperHostEnv, set to "PYTHON SCRIPT", makes the test binary a host (see
// TestMain): it starts the Python plugin, prints the plugin's pid and the
// one its Describe names (its child), and waits to be killed.
const helperHostEnv = "TLSPIN_TEST_PY_HOST"

func helperHost(python, script string) {
	p, err := host.Start(context.Background(), host.Spec{Name: "probe", Path: python, Args: []string{script}}, host.Config{Env: host.PluginEnv(os.Getenv)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper host:", err)
		os.Exit(1)
	}
	d, err := p.Describe(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper host:", err)
		os.Exit(1)
	}
	fmt.Printf("%d %s\n", p.Pid(), d.Summary)
	select {}
}

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
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperHostEnv+"="+testpy.Python(t)+" "+script)
	cmd.Stderr = os.Stderr
	var pluginPID, childPID int
	line := testbin.StartLine(t, cmd)
	if _, err := fmt.Sscanf(line, "%d %d", &pluginPID, &childPID); err != nil {
		t.Fatalf("helper host said %q (%v)", line, err)
	}
	defer syscall.Kill(childPID, syscall.SIGKILL)
	if !e2e.Alive(pluginPID) || !e2e.Alive(childPID) {
		t.Fatalf("plugin %d or its child %d not running", pluginPID, childPID)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !wait.Until(5*time.Second, func() bool { return !e2e.Alive(pluginPID) && !e2e.Alive(childPID) }) {
		t.Fatalf("after the host was killed: plugin %d alive %v, its child %d alive %v", pluginPID, e2e.Alive(pluginPID), childPID, e2e.Alive(childPID))
	}
}
