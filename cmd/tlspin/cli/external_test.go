package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/internal/testbin"
)

// misbehaveDir is the directory holding the test plugin
// tlspin-verifier-misbehave.
func misbehaveDir(t *testing.T) string {
	return filepath.Dir(testbin.Build(t, "./cmd/tlspin/cli/testdata/plugins/misbehave", "tlspin-verifier-misbehave"))
}

// TestBenchExternal measures a verifier that is not built in: found on the
// plugin path, configured with the options given, without an in-process
// mode.
func TestBenchExternal(t *testing.T) {
	stdout, stderr, code := run(t, "--plugin-dir", misbehaveDir(t), "bench", "--json", "--verifier", "misbehave:mode=allow",
		"--duration", "200ms", "--launches", "1", "--samples", "20")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, stdout)
	}
	if doc["verifier"] != "misbehave" {
		t.Errorf("verifier = %v", doc["verifier"])
	}
	for _, k := range []string{"no_inprocess", "no_floor"} {
		if s, _ := doc[k].(string); !strings.Contains(s, "not built into tlspin") {
			t.Errorf("%s = %v", k, doc[k])
		}
	}
	for _, k := range []string{"plugin_hs_per_s", "cached_hs_per_s", "plugin_verify_us"} {
		if v, _ := doc[k].(float64); v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, doc[k])
		}
	}
	for _, k := range []string{"inprocess_hs_per_s", "floor_hs_per_s"} {
		if v, _ := doc[k].(float64); v != 0 {
			t.Errorf("%s = %v without an in-process mode", k, v)
		}
	}
}

// TestCompareExternal compares an external verifier, configured with the
// options given, next to a built-in one, on the same scenarios.
func TestCompareExternal(t *testing.T) {
	stdout, stderr, code := run(t, "--plugin-dir", misbehaveDir(t), "compare", "--json", "--samples", "5",
		"--verifier", "misbehave:mode=allow", "--verifier", "spkipin")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc compareJSON
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, stdout)
	}
	got := map[string]bool{}
	for _, r := range doc.Results {
		got[r.Verifier+"/"+r.Scenario] = *r.Accepted
	}
	// misbehave:mode=allow allows anything; spkipin refuses the look-alike.
	if !got["misbehave/lookalike"] || !got["misbehave/same"] || got["spkipin/lookalike"] || !got["spkipin/same"] {
		t.Errorf("results %v", got)
	}
	if len(doc.Verifiers) != 2 || !strings.Contains(*doc.Verifiers[0].Note, "no in-process cost") || *doc.Verifiers[0].PluginUs <= 0 {
		t.Errorf("verifiers %+v", doc.Verifiers)
	}
	// The table says n/a for the cost it has not got, rather than 0.00.
	for _, format := range []string{"", "--markdown"} {
		args := []string{"--plugin-dir", misbehaveDir(t), "compare", "--samples", "5", "--verifier", "misbehave:mode=allow", "--verifier", "spkipin"}
		if format != "" {
			args = append(args, format)
		}
		stdout, stderr, code := run(t, args...)
		if code != cli.ExitOK {
			t.Fatalf("%s: exit %d: %s", format, code, stderr)
		}
		if !regexp.MustCompile(`(?m)^\|? ?misbehave[ |]+n/a[ |]+[0-9]`).MatchString(stdout) {
			t.Errorf("%s: the misbehave row does not say n/a for its in-process cost:\n%s", format, stdout)
		}
	}
}

// TestExternalUsage: an external verifier without options has no recipe,
// and a checksum pinned for a verifier not compared is refused.
func TestExternalUsage(t *testing.T) {
	dir := misbehaveDir(t)
	sum := strings.Repeat("ab", 32)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--plugin-dir", dir, "bench", "--verifier", "misbehave"}, "give its options"},
		{[]string{"--plugin-dir", dir, "compare", "--verifier", "misbehave"}, "give the options"},
		{[]string{"--plugin-sha256", "md5pn=" + sum, "compare", "--verifier", "md5pin"}, `"md5pn"`},
		{[]string{"--plugin-sha256", "md5pn=" + sum, "bench", "--verifier", "md5pin"}, `"md5pn"`},
	}
	for _, tt := range tests {
		_, stderr, code := run(t, tt.args...)
		if code != cli.ExitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want usage error mentioning %q", tt.args, code, stderr, tt.want)
		}
	}
}

// TestChecksumsFileThatMissesAPlugin: a --plugin-checksums file given to
// pin plugins, which does not list the one a --verifier runs, lets it run
// unpinned, as a shared file may; the user is warned that it does, and of
// no plugin the file pins.
func TestChecksumsFileThatMissesAPlugin(t *testing.T) {
	dir := t.TempDir()
	certFile := filepath.Join(dir, "cert.pem")
	if _, stderr, code := run(t, "cert", "--out", certFile); code != cli.ExitOK {
		t.Fatalf("cert: exit %d: %s", code, stderr)
	}
	sums := filepath.Join(dir, "SHA256SUMS")
	if err := os.WriteFile(sums, []byte(strings.Repeat("ab", 32)+"  tlspin-verifier-other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := run(t, "--log-level", "warn", "--plugin-dir", misbehaveDir(t), "--plugin-checksums", sums, "verify", "--verifier", "misbehave:mode=allow", certFile)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "the checksums file does not list this verifier's plugin: it runs unpinned: verifier=misbehave") {
		t.Errorf("no warning that misbehave runs unpinned:\n%s", stderr)
	}
}
