package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/internal/testbin"
)

// TestCheckPasses runs `tlspin verifiers check` on every built-in
// verifier and on the Go example: each passes every item.
func TestCheckPasses(t *testing.T) {
	dir := t.TempDir()
	allow := filepath.Join(dir, "allow.txt")
	if err := os.WriteFile(allow, []byte("md5:00112233445566778899aabbccddeeff\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(dir, "known")
	if err := os.WriteFile(known, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	roots := filepath.Join(dir, "roots.pem")
	if _, _, code := run(t, "cert", "--out", roots, "--type", "ecdsa"); code != 0 {
		t.Fatal("tlspin cert failed")
	}
	example := filepath.Dir(testbin.Build(t, "./examples/go-verifier", "tlspin-verifier-sanexpiry"))
	tests := []struct {
		name string
		args []string
	}{
		{"md5pin", []string{"--opt", "pin=00112233445566778899aabbccddeeff", "--bad", "pin=zz"}},
		{"sha256pin", []string{"--opt", "pin=" + strings.Repeat("ab", 32), "--bad", "pin=ab:cd"}},
		{"spkipin", []string{"--opt", "pin=sha256//" + strings.Repeat("A", 43) + "=", "--bad", "pin=sha256//short"}},
		{"allowlist", []string{"--opt", "file=" + allow, "--bad", "file=" + filepath.Join(dir, "nosuch.txt"), "--bad", "chain=sideways"}},
		{"tofu", []string{"--opt", "file=" + known, "--opt", "mode=strict", "--bad", "mode=sometimes"}},
		{"ca", []string{"--opt", "ca-file=" + roots, "--bad", "ca-file=" + allow}},
		{"sanexpiry", []string{"--plugin-dir", example, "--opt", "san=*.example.com", "--bad", "max-days=soon", "--bad", "san=[oops"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"verifiers", "check", "--samples", "20"}, tc.args...)
			out, errOut, code := run(t, append(args, tc.name)...)
			if code != 0 || strings.Contains(out, "FAIL") {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			for _, item := range []string{"handshake", "channel-socket", "configure-bad-value", "verify-scenarios", "shutdown", "stdout"} {
				if !strings.Contains(out, "PASS  "+item) {
					t.Errorf("no PASS for %s:\n%s", item, out)
				}
			}
		})
	}
}

// TestCheckFails checks the exit code, the output and the JSON of a
// failing run, and the usage errors.
func TestCheckFails(t *testing.T) {
	dir := filepath.Dir(testbin.Build(t, "./core/conformance/testdata/plugins", "tlspin-verifier-wrongname"))
	out, errOut, code := run(t, "verifiers", "check", "--plugin-dir", dir, "--samples", "5", "--opt", "want=allow", "wrongname")
	if code != 1 || !strings.Contains(out, `FAIL  describe-name        Describe says "somethingelse", the file says "wrongname"`) || !strings.Contains(errOut, "wrongname failed 1 of 18 items") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	// Without --bad, that item is skipped, not failed.
	if !strings.Contains(out, "SKIP  configure-bad-value  no bad value given (--bad KEY=VALUE)") {
		t.Fatalf("no skip for configure-bad-value:\n%s", out)
	}

	out, _, code = run(t, "verifiers", "check", "--json", "--plugin-dir", dir, "--samples", "5", "--opt", "want=allow", "wrongname")
	var doc struct {
		Schema  string  `json:"schema"`
		Name    string  `json:"name"`
		Failed  int     `json:"failed"`
		P50     float64 `json:"verify_p50_us"`
		Results []struct {
			Item, Status, Detail string
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if code != 1 || doc.Schema != "tlspin.verifiers-check/v1" || doc.Name != "wrongname" || doc.Failed != 1 || doc.P50 <= 0 || len(doc.Results) != 18 {
		t.Fatalf("exit %d, %+v", code, doc)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, `unknown verifier "nosuch"`},
		{[]string{"--opt", "pin", "md5pin"}, `--opt "pin": want KEY=VALUE`},
		{[]string{"--samples", "0", "md5pin"}, "--samples 0: want at least 1"},
		{nil, "check takes one verifier NAME or path to a plugin, got 0 argument(s)"},
	} {
		_, errOut, code := run(t, append([]string{"verifiers", "check"}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestCheckSaysHowThePluginExited: a plugin that exits before its
// handshake line is reported with its exit status, "it exited with status
// 0" rather than "it exited: <nil>".
func TestCheckSaysHowThePluginExited(t *testing.T) {
	for _, tt := range []struct {
		status string
		want   string
	}{
		{"0", "it exited with status 0"},
		{"3", "it exited with status 3"},
	} {
		dir := t.TempDir()
		plugin := filepath.Join(dir, "tlspin-verifier-quits")
		if err := os.WriteFile(plugin, []byte("#!/bin/sh\nexit "+tt.status+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := run(t, "verifiers", "check", plugin)
		if code != cli.ExitFailure || !strings.Contains(out, tt.want) || strings.Contains(out, "<nil>") {
			t.Errorf("exit %s: exit %d, want %d and %q; stdout:\n%s\nstderr:\n%s", tt.status, code, cli.ExitFailure, tt.want, out, errOut)
		}
	}
}
