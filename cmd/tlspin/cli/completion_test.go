package cli_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCompletion asks cobra's hidden __complete command, as the shell
// scripts of `tlspin completion` do, and checks the values offered and the
// directive (the last line, ":N").
func TestCompletion(t *testing.T) {
	dir := t.TempDir()
	plugin := filepath.Join(dir, "tlspin-verifier-extra")
	if err := os.WriteFile(plugin, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const noFiles, fileExt = ":4", ":8"
	tests := []struct {
		args      []string
		want      []string
		directive string
	}{
		{[]string{"fingerprint", "--algo", ""}, []string{"md5", "sha1", "sha256", "spki"}, noFiles},
		{[]string{"fingerprint", "--format", ""}, []string{"hex", "colon", "base64", "curl", "okhttp", "hpkp", "openssl"}, noFiles},
		{[]string{"cert", "--type", ""}, []string{"rsa", "ecdsa", "ed25519"}, noFiles},
		{[]string{"send", "--require", ""}, []string{"all", "any"}, noFiles},
		{[]string{"serve", "--require", ""}, []string{"all", "any"}, noFiles},
		{[]string{"--log-level", ""}, []string{"trace", "debug", "info", "warn", "error", "off"}, noFiles},
		{[]string{"send", "--log-level", ""}, []string{"trace", "debug", "info", "warn", "error", "off"}, noFiles},
		{[]string{"--plugin-dir", dir, "send", "--verifier", ""}, []string{"md5pin", "sha256pin", "spkipin", "allowlist", "tofu", "ca", "extra"}, noFiles},
		{[]string{"--plugin-dir", dir, "serve", "--verifier", ""}, []string{"spkipin", "extra"}, noFiles},
		{[]string{"--plugin-dir", dir, "verifiers", ""}, []string{"md5pin", "tofu", "extra"}, noFiles},
		// After NAME:, a built-in's options, after those already written.
		{[]string{"send", "--verifier", "md5pin:"}, []string{"md5pin:pin=", "md5pin:chain=", "md5pin:expires="}, ":6"},
		{[]string{"send", "--verifier", "allowlist:file=x,"}, []string{"allowlist:file=x,chain="}, ":6"},
		{[]string{"send", "--cert", ""}, []string{"pem", "crt", "key"}, fileExt},
		{[]string{"serve", "--key", ""}, []string{"pem", "key"}, fileExt},
		{[]string{"send", "--half-close", ""}, []string{"always", "auto", "never"}, noFiles},
		{[]string{"verify", "--side", ""}, []string{"server", "client"}, noFiles},
		{[]string{"bench", "--key", ""}, []string{"ecdsa", "rsa"}, noFiles},
		{[]string{"compare", "--key", ""}, []string{"ecdsa", "rsa", "ed25519"}, noFiles},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, stderr, code := inProcess(t, "", append([]string{"__complete"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			var values []string
			for _, l := range lines[:len(lines)-1] {
				v, _, _ := strings.Cut(l, "\t")
				values = append(values, v)
			}
			for _, w := range tc.want {
				if !slices.Contains(values, w) {
					t.Errorf("%q not offered; got %q", w, values)
				}
			}
			if got := lines[len(lines)-1]; got != tc.directive {
				t.Errorf("directive %s, want %s", got, tc.directive)
			}
		})
	}
	// bench and compare offer only built-ins (they measure those).
	for _, c := range []string{"bench", "compare"} {
		out, _, _ := inProcess(t, "", "__complete", "--plugin-dir", dir, c, "--verifier", "")
		if strings.Contains(out, "extra") || !strings.Contains(out, "spkipin") {
			t.Errorf("%s --verifier offers %q", c, out)
		}
	}
}
