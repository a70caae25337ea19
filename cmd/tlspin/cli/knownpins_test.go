package cli_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/core/pin"
)

// TestKnownPinsListPrintsPinsItReads: `known-pins list`, plain and
// --json, prints every pin as a line of the file has it, whatever form a
// line written by hand gave it in. A pin written as curl's sha256//,
// OkHttp's sha256/ or HPKP's pin-sha256= was printed "spki:sha256//...",
// which neither the file nor `known-pins add` takes.
func TestKnownPinsListPrintsPinsItReads(t *testing.T) {
	digest := func() []byte {
		d := make([]byte, 32)
		rand.Read(d)
		return d
	}
	forms := map[string]func([]byte) string{
		"a.example:443": func(d []byte) string { return "sha256//" + base64.StdEncoding.EncodeToString(d) },
		"b.example:443": func(d []byte) string { return `pin-sha256="` + base64.StdEncoding.EncodeToString(d) + `"` },
		"c.example:443": func(d []byte) string { return "spki:" + hex.EncodeToString(d) },
		"d.example:443": func(d []byte) string { return "spki:" + base64.StdEncoding.EncodeToString(d) },
	}
	want := map[string][]byte{}
	var file bytes.Buffer
	for key, form := range forms {
		want[key] = digest()
		file.WriteString(key + " " + form(want[key]) + "\n")
	}
	path := filepath.Join(t.TempDir(), "known_pins")
	if err := os.WriteFile(path, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(key, printed string) {
		t.Helper()
		if !strings.HasPrefix(printed, "spki:") {
			t.Errorf("%s: printed %q, want spki:VALUE", key, printed)
			return
		}
		p, err := pin.Parse(pin.SPKI, printed)
		if err != nil || !p.Equal(want[key]) {
			t.Errorf("%s: printed %q, which reads as %v, %v", key, printed, p, err)
		}
	}

	stdout, stderr, code := inProcess(t, "", "known-pins", "--file", path, "list")
	if code != cli.ExitOK {
		t.Fatalf("list: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != len(want) {
		t.Fatalf("list printed %d lines, want %d:\n%s", len(lines), len(want), stdout)
	}
	for _, l := range lines {
		f := strings.Fields(l)
		check(f[0], f[1])
	}

	stdout, stderr, code = inProcess(t, "", "known-pins", "--file", path, "list", "--json")
	if code != cli.ExitOK {
		t.Fatalf("list --json: exit %d: %s", code, stderr)
	}
	var docs []struct{ Key, Pin string }
	if err := json.Unmarshal([]byte(stdout), &docs); err != nil || len(docs) != len(want) {
		t.Fatalf("list --json: %v, %d entries:\n%s", err, len(docs), stdout)
	}
	for _, d := range docs {
		check(d.Key, d.Pin)
	}
}
