package cli_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/internal/testbin"
)

// sha256File is the hex SHA-256 of the file at path.
func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestVerifiersHonourPins: `verifiers NAME` and `verifiers check NAME`
// start a plugin, so --plugin-sha256 and --plugin-checksums pin what they
// run, as for send: a plugin whose hash is not the pinned one never runs,
// and a pin for a name not asked about is a typo (exit 2).
func TestVerifiersHonourPins(t *testing.T) {
	bin := testbin.Tlspin(t)
	builtins := filepath.Join(filepath.Dir(bin), "tlspin-builtins")
	dir := misbehaveDir(t)
	plugin := filepath.Join(dir, "tlspin-verifier-misbehave")
	wrong := strings.Repeat("00", 32)
	sumsFile := func(sum, name string) string {
		p := filepath.Join(t.TempDir(), "SHA256SUMS")
		if err := os.WriteFile(p, []byte(sum+"  tlspin-verifier-"+name+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pd := []string{"--plugin-dir", dir}
	md5check := []string{"verifiers", "check", "--samples", "5", "--opt", "pin=00112233445566778899aabbccddeeff", "md5pin"}
	// misbehave fails some of check's items whatever its pin: a pin that
	// lets it run shows as its report, one that does not as no report.
	mischeck := []string{"verifiers", "check", "--samples", "5", "--opt", "mode=allow", "misbehave"}
	cat := func(a ...[]string) []string {
		var out []string
		for _, x := range a {
			out = append(out, x...)
		}
		return out
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // in stderr
		stdout string // in stdout
	}{
		{"describe, right --plugin-sha256", cat(pd, []string{"--plugin-sha256", "misbehave=" + sha256File(t, plugin), "verifiers", "misbehave"}), cli.ExitOK, "", "options:"},
		{"describe, wrong --plugin-sha256", cat(pd, []string{"--plugin-sha256", "misbehave=" + wrong, "verifiers", "misbehave"}), cli.ExitFailure, "checksum mismatch", ""},
		{"describe, right --plugin-checksums", cat(pd, []string{"--plugin-checksums", sumsFile(sha256File(t, plugin), "misbehave"), "verifiers", "misbehave"}), cli.ExitOK, "", "options:"},
		{"describe, wrong --plugin-checksums", cat(pd, []string{"--plugin-checksums", sumsFile(wrong, "misbehave"), "verifiers", "misbehave"}), cli.ExitFailure, "checksum mismatch", ""},
		// A built-in is pinned through the file that runs it.
		{"describe a built-in, right pin", []string{"--plugin-sha256", "md5pin=" + sha256File(t, builtins), "verifiers", "md5pin"}, cli.ExitOK, "", "options:"},
		{"describe a built-in, wrong pin", []string{"--plugin-sha256", "md5pin=" + wrong, "verifiers", "md5pin"}, cli.ExitFailure, "checksum mismatch", ""},
		{"describe, pin for another name", []string{"--plugin-sha256", "md5pn=" + wrong, "verifiers", "md5pin"}, cli.ExitUsage, `"md5pn"`, ""},
		{"check, right --plugin-sha256", cat(pd, []string{"--plugin-sha256", "misbehave=" + sha256File(t, plugin)}, mischeck), cli.ExitFailure, "failed 3 of", "PASS  handshake"},
		{"check, wrong --plugin-sha256", cat(pd, []string{"--plugin-sha256", "misbehave=" + wrong}, mischeck), cli.ExitFailure, "checksum mismatch", ""},
		{"check, right --plugin-checksums", cat(pd, []string{"--plugin-checksums", sumsFile(sha256File(t, plugin), "misbehave")}, mischeck), cli.ExitFailure, "failed 3 of", "PASS  handshake"},
		{"check, wrong --plugin-checksums", cat(pd, []string{"--plugin-checksums", sumsFile(wrong, "misbehave")}, mischeck), cli.ExitFailure, "checksum mismatch", ""},
		// check runs a built-in over go-plugin's gRPC: the tlspin binary.
		{"check a built-in, right pin", cat([]string{"--plugin-sha256", "md5pin=" + sha256File(t, bin)}, md5check), cli.ExitOK, "", "PASS  handshake"},
		{"check a built-in, wrong pin", cat([]string{"--plugin-sha256", "md5pin=" + wrong}, md5check), cli.ExitFailure, "checksum mismatch", ""},
		{"check a built-in, tlspin-builtins' sum", cat([]string{"--plugin-sha256", "md5pin=" + sha256File(t, builtins)}, md5check), cli.ExitFailure, "checksum mismatch", ""},
		{"check, pin for another name", cat([]string{"--plugin-sha256", "md5pn=" + wrong}, md5check), cli.ExitUsage, `"md5pn"`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := run(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) || !strings.Contains(stdout, tc.stdout) {
				t.Fatalf("exit %d, want %d with %q in stderr and %q in stdout\nstdout:\n%s\nstderr:\n%s", code, tc.code, tc.stderr, tc.stdout, stdout, stderr)
			}
			if tc.code != cli.ExitOK && tc.stdout == "" && strings.Contains(stdout, "PASS") {
				t.Errorf("the plugin ran despite its pin:\n%s", stdout)
			}
		})
	}
}
