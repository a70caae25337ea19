package host_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/internal/wait"
)

// helperHostEnv, set to the probe binary's path, makes the test binary a
// host (see TestMain): it starts probe in child mode, prints the plugin's
// pid and its child's, and waits to be killed.
const helperHostEnv = "TLSPIN_TEST_HELPER_HOST"

func helperHost(probe string) {
	p, err := host.Start(context.Background(), host.Spec{Name: "probe", Path: probe, Args: []string{"child"}}, host.Config{Env: host.PluginEnv(os.Getenv)})
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

// TestSDKPluginChildrenDieWithHost kills a host with SIGKILL while its SDK
// plugin has a child process: the plugin and the child must both end.
func TestSDKPluginChildrenDieWithHost(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperHostEnv+"="+probeBinary(t))
	cmd.Stderr = testWriter{t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	var pluginPID, childPID int
	line, err := bufio.NewReader(out).ReadString('\n')
	if _, serr := fmt.Sscanf(line, "%d %d", &pluginPID, &childPID); err != nil || serr != nil {
		t.Fatalf("helper host said %q (%v)", line, err)
	}
	defer syscall.Kill(childPID, syscall.SIGKILL)
	if !alive(pluginPID) || !alive(childPID) {
		t.Fatalf("plugin %d or its child %d not running", pluginPID, childPID)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !wait.Until(5*time.Second, func() bool { return !alive(pluginPID) && !alive(childPID) }) {
		t.Fatalf("after the host was killed: plugin %d alive %v, its child %d alive %v", pluginPID, alive(pluginPID), childPID, alive(childPID))
	}
}
