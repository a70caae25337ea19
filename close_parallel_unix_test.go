//go:build unix

package tlspin_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/testbin"
)

// stopGrace is how long the host lets a plugin exit on its own after
// asking it to (core/host's gracePeriod) before it kills the plugin.
const stopGrace = 500 * time.Millisecond

// TestCloseStopsPluginsAtOnce: Close stops its verifiers concurrently,
// so that plugins which ignore the request to exit cost one grace period
// in all, not one each. Each of the four plugins here answers the
// host's Shutdown and goes on running: Close used to stop them one after
// another, 4 × 0.5 s.
func TestCloseStopsPluginsAtOnce(t *testing.T) {
	const n = 4
	plugin := testbin.Build(t, "./tests/wire/testdata/rawplugin", "tlspin-verifier-raw")
	stops := t.TempDir()
	env := map[string]string{"RAWPLUGIN": "deaf,stdio,health,san", "RAWPLUGIN_STOPS": stops}
	specs := make([]string, n)
	for i := range specs {
		specs[i] = "raw"
	}
	v, err := tlspin.StartWith(context.Background(), specs,
		tlspin.WithPluginDirs(filepath.Dir(plugin)),
		tlspin.WithGetenv(func(k string) string {
			if s, ok := env[k]; ok {
				return s
			}
			return os.Getenv(k)
		}),
		tlspin.WithPluginEnv("RAWPLUGIN", "RAWPLUGIN_STOPS"),
		tlspin.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		t.Fatal(err)
	}
	begun := time.Now()
	if err := v.Close(); err != nil {
		t.Errorf("Close = %v; want nil", err)
	}
	took := time.Since(begun)

	// Every plugin was asked to exit (and ignored it), and is gone.
	got, err := os.ReadDir(stops)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Errorf("%d plugins were asked to exit; want all %d", len(got), n)
	}
	for _, e := range got {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			t.Fatalf("stop file %q", e.Name())
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("plugin %d still exists after Close (kill 0: %v)", pid, err)
		}
	}
	if took < stopGrace {
		t.Errorf("Close returned after %s, within the %s grace: the plugins did not make it wait, so this test proves nothing", took, stopGrace)
	}
	if took >= 2*stopGrace {
		t.Errorf("Close of %d plugins that ignore their stop took %s; want about one grace (%s), not one each", n, took, stopGrace)
	}
}
