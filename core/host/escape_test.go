package host_test

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/host"
)

// TestChildHoldingStderrDoesNotHangClose: a plugin whose child leaves its
// process group (setsid, a daemon, Python's start_new_session) and keeps
// the plugin's stderr open. Killing the group cannot reach the child, and
// go-plugin waits for the plugin's stdout and stderr to end before it
// reaps the process: Close, and the restart of such a plugin, waited for
// as long as the child lived, forever for a daemon, and tlspin with it.
// Once the plugin is killed, its pipes are now given up after a moment.
func TestChildHoldingStderrDoesNotHangClose(t *testing.T) {
	p, err := host.Start(context.Background(), host.Spec{Name: "probe", Path: probeBinary(t), Args: []string{"escape"}}, discConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(d.Summary)
	if err != nil {
		t.Fatalf("summary %q: not the child's pid", d.Summary)
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	if v, err := p.Verify(context.Background(), anyReq()); err != nil || !v.Allow {
		t.Fatalf("verdict %+v, err %v; want the plugin's allow", v, err)
	}
	closed := make(chan struct{})
	go func() {
		p.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatalf("Close did not return within 30 s while the plugin's child (pid %d, alive %v) holds its stderr", child, alive(child))
	}
}
