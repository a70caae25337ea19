package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// helperHostEnv, set to a plugin's command line as JSON, makes a test
// binary whose TestMain calls HelperHost a host of that plugin.
const helperHostEnv = "TLSPIN_TEST_HELPER_HOST"

// HelperHost, called first in TestMain, makes the test binary the host
// that AssertChildrenDieWithHost re-executes it as: it starts the plugin,
// prints its pid and its Describe summary (the pid of a child the plugin
// started), and waits to be killed. Otherwise it returns at once.
func HelperHost() {
	v := os.Getenv(helperHostEnv)
	if v == "" {
		return
	}
	var argv []string
	if err := json.Unmarshal([]byte(v), &argv); err != nil || len(argv) == 0 {
		fmt.Fprintf(os.Stderr, "helper host: $%s=%q: want a JSON command line\n", helperHostEnv, v)
		os.Exit(1)
	}
	p, err := host.Start(context.Background(), host.Spec{Name: "probe", Path: argv[0], Args: argv[1:]}, host.Config{Env: host.PluginEnv(os.Getenv)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper host:", err)
		os.Exit(1)
	}
	desc, err := p.Describe(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper host:", err)
		os.Exit(1)
	}
	fmt.Printf("%d %s\n", p.Pid(), desc.Summary)
	select {}
}

// AssertChildrenDieWithHost runs the test binary as a host (HelperHost)
// of the plugin argv, a probe whose Describe summary is the pid of a
// child it started; kills the host with SIGKILL; and fails unless the
// plugin and its child both end.
func AssertChildrenDieWithHost(t *testing.T, argv ...string) {
	t.Helper()
	spec, err := json.Marshal(argv)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// A host killed by SIGKILL cannot remove the plugin's socket
	// directory, which it made in $TMPDIR: make that the test's.
	cmd.Env = append(os.Environ(), helperHostEnv+"="+string(spec), "TMPDIR="+t.TempDir())
	cmd.Stderr = os.Stderr
	var pluginPID, childPID int
	line := testbin.StartLine(t, cmd)
	if _, err := fmt.Sscanf(line, "%d %d", &pluginPID, &childPID); err != nil {
		t.Fatalf("helper host said %q (%v)", line, err)
	}
	defer syscall.Kill(childPID, syscall.SIGKILL)
	if !Alive(pluginPID) || !Alive(childPID) {
		t.Fatalf("plugin %d or its child %d not running", pluginPID, childPID)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !wait.Until(5*time.Second, func() bool { return !Alive(pluginPID) && !Alive(childPID) }) {
		t.Fatalf("after the host was killed: plugin %d alive %v, its child %d alive %v", pluginPID, Alive(pluginPID), childPID, Alive(childPID))
	}
}
