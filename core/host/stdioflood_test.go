package host_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestPluginCannotFloodTheLogThroughStdio is the attack of a plugin that
// sends, on go-plugin's stdio stream, messages that name neither stdout
// nor stderr: go-plugin logged a warning for each, past the limit on a
// plugin's lines (a burst, then so many a second), so that a plugin
// filled the host's log, and held up every goroutine of the host that
// logs, at a few bytes a line. They are now held to that limit too.
func TestPluginCannotFloodTheLogThroughStdio(t *testing.T) {
	const flood = 5000 // badplugin's stdioFlood
	logs := &syncbuf.Buffer{}
	start := time.Now()
	startBad(t, "stdio-flood", host.Config{Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Warn})})
	// The plugin's last message, a line for its stderr, comes after the
	// flood on the same stream.
	if !wait.Until(time.Minute, func() bool { return strings.Contains(logs.String(), "stdio flood sent") }) {
		t.Fatalf("the plugin's line after its flood was not logged within a minute:\n%.2000s", logs.String())
	}
	// A burst of 200 lines, then 50 a second.
	logged, most := strings.Count(logs.String(), "unknown channel"), 200+50*(int(time.Since(start).Seconds())+1)
	if logged > most {
		t.Fatalf("ATTACK: %d of the plugin's %d messages on no channel were logged, one line each; want %d at most", logged, flood, most)
	}
}
