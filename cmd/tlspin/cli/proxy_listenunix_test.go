package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProxyListenUnixChecksUpFront: a --listen unix: value that no socket
// can take (abstract, a directory that does not exist, a path longer than
// a socket's name) is a usage error (exit 2) naming the value, given before
// any verifier plugin starts; it was exit 1, once the plugins had started.
func TestProxyListenUnixChecksUpFront(t *testing.T) {
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	plugins := filepath.Join(dir, "plugins")
	if err := os.Mkdir(plugins, 0o700); err != nil {
		t.Fatal(err)
	}
	// A plugin that leaves a mark when it starts.
	script := "#!/bin/sh\ntouch '" + started + "'\nexit 1\n"
	if err := os.WriteFile(filepath.Join(plugins, "tlspin-verifier-marker"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	long := "unix:" + filepath.Join(dir, strings.Repeat("x", 120)+".sock")
	tests := []struct{ name, listen, want string }{
		{"abstract", "unix:@name", "abstract socket"},
		{"no such directory", "unix:" + filepath.Join(dir, "missing", "p.sock"), "no such directory"},
		{"too long", long, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runEnv(t, []string{"TLSPIN_PLUGIN_PATH=" + plugins}, "proxy", "client", "--listen", tt.listen, "--target", "127.0.0.1:1", "--verifier", "marker")
			if code != 2 || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, strings.TrimPrefix(tt.listen, "unix:")) {
				t.Errorf("exit %d, stderr %q; want exit 2, a usage error naming the value and saying %q", code, stderr, tt.want)
			}
			if _, err := os.Stat(started); err == nil {
				os.Remove(started)
				t.Errorf("the verifier plugin was started before --listen was checked")
			}
		})
	}
}
