package host_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/host"
)

// TestPluginCannotFloodTheBroker is the attack of a plugin that answers
// go-plugin's broker stream, which the host opened for every plugin and
// tlspin never uses, with a flood of "knocks" of a few bytes each, each
// for a service id of its own. go-plugin's host side kept an entry for
// each, which nothing ever removed: 200,000 knocks (2 MB from the
// plugin) held some 90 MB of the host's memory for as long as the plugin
// ran, and a plugin that kept sending brought the host, with every other
// verifier and connection, down for lack of memory. A knock without its
// flag held a goroutine for 5 s each instead. The host now refuses the
// stream before it reaches the plugin.
func TestPluginCannotFloodTheBroker(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// The plugin answers Verify once its flood is sent, if the host
	// opened the stream: the time that takes is no fault of the test's.
	p := startBad(t, "broker-flood", host.Config{VerifyTimeout: 2 * time.Minute})
	v, err := p.Verify(context.Background(), anyReq())
	if err != nil || !v.Allow {
		t.Fatalf("verdict %+v, err %v; want the plugin's allow", v, err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if v.Reason != "broker stream not opened" {
		t.Fatalf("ATTACK: the host opened go-plugin's broker stream, and the plugin answered on it (%s): the host's heap grew by %d MiB meanwhile, which it keeps while the plugin runs",
			v.Reason, (int64(after.HeapInuse)-int64(before.HeapInuse))>>20)
	}
}
