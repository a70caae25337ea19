package cli_test

import (
	"strings"
	"testing"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
)

// TestPluginEnvRefusesWhatTheHostSets: --plugin-env passes a variable of
// tlspin's environment on top of those tlspin sets for the plugin itself;
// naming one of those (the direct channel's descriptor, go-plugin's
// handshake, the log level --log-level gives) would silently replace the
// host's value, so it is a usage error naming the variable, before any
// plugin runs.
func TestPluginEnvRefusesWhatTheHostSets(t *testing.T) {
	for _, name := range []string{
		"TLSPIN_PLUGIN_CHANNEL_FD",
		"TLSPIN_VERIFIER_PLUGIN",
		"PLUGIN_UNIX_SOCKET_DIR",
		"PLUGIN_PROTOCOL_VERSIONS",
		"TLSPIN_LOG_LEVEL",
		"PATH",
		"HOME",
		"TMPDIR",
	} {
		t.Run(name, func(t *testing.T) {
			_, stderr, code := runEnv(t, []string{name + "=7"}, "--plugin-env", name, "verify", "--verifier", "tofu", "/nonexistent/cert.pem")
			if code != cli.ExitUsage || !strings.Contains(stderr, "--plugin-env") || !strings.Contains(stderr, `"`+name+`"`) {
				t.Errorf("exit %d, stderr %q; want a usage error (exit %d) naming --plugin-env %q", code, stderr, cli.ExitUsage, name)
			}
		})
	}
	// What tlspin does not set passes, GOMAXPROCS (whose 1 it replaces)
	// included.
	for _, name := range []string{"PYTHONPATH", "GOMAXPROCS"} {
		t.Run(name, func(t *testing.T) {
			_, stderr, _ := runEnv(t, []string{name + "=7"}, "--plugin-env", name, "verify", "--verifier", "tofu", "/nonexistent/cert.pem")
			if strings.Contains(stderr, "--plugin-env") {
				t.Errorf("--plugin-env %s refused: %s", name, stderr)
			}
		})
	}
}
