package cli_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/internal/testbin"
)

// TestDemo runs `tlspin demo` as a user would: it must pass, show the
// message arriving, and show the wrong pin refused.
func TestDemo(t *testing.T) {
	var out, errb bytes.Buffer
	cmd := exec.Command(testbin.Tlspin(t), "demo")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("tlspin demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	for _, want := range []string{
		"$ tlspin cert --out cert.pem",
		"$ tlspin fingerprint --algo md5 cert.pem",
		"server printed: CHUPA ESSA MANGA, WIRESHARK!1!!",
		"refused (exit 3)",
		"md5pin mismatch",
		"demo passed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
