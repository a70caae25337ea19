package cli_test

import (
	"encoding/json"
	"runtime"
	"testing"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
)

func TestVersionCommandAndFlag(t *testing.T) {
	flag, _, code := inProcess(t, "", "--version")
	cmd, _, code2 := inProcess(t, "", "version")
	if code != cli.ExitOK || code2 != cli.ExitOK || flag != cmd {
		t.Fatalf("--version (exit %d) %q and version (exit %d) %q differ", code, flag, code2, cmd)
	}
	out, stderr, code := inProcess(t, "", "version", "--json")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v["go_version"] != runtime.Version() || v["version"] == "" || v["platform"] != runtime.GOOS+"/"+runtime.GOARCH {
		t.Fatalf("version --json = %s", out)
	}
}
