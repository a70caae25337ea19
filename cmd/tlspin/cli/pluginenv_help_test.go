package cli_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/internal/launch"
)

// TestPluginEnvHelpNamesEveryVariable: --plugin-env's help says what a
// plugin gets by default; it must name every variable tlspin gives it
// (GOMAXPROCS=1 was missing), go-plugin's own PLUGIN_* variables aside.
func TestPluginEnvHelpNamesEveryVariable(t *testing.T) {
	var out, errb bytes.Buffer
	if code := cli.Run([]string{"--help"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("tlspin --help: exit %d\n%s", code, errb.String())
	}
	var usage string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "--plugin-env") {
			usage = l
		}
	}
	if usage == "" {
		t.Fatalf("no --plugin-env in tlspin --help:\n%s", out.String())
	}
	env, err := (&launch.Config{Getenv: func(string) string { return "set" }}).PluginEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if value != "set" { // set by tlspin itself: the help gives its value
			name = kv
		}
		if !strings.Contains(usage, name) {
			t.Errorf("--plugin-env help does not say that plugins get %s:\n%s", name, usage)
		}
	}
}
