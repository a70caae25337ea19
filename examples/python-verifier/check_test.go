package pythonverifier_test

import (
	"strings"
	"testing"

	"github.com/tlspin/tlspin/internal/checkrun"
)

// TestVerifiersCheck runs `tlspin verifiers check` on the plugin, installed
// as its README says: it passes every item, bad values included.
func TestVerifiersCheck(t *testing.T) {
	needPython(t)
	pin := spkiPin(t, newCert(t, "api.example.com"))
	checkrun.Pass(t, ".", nil, "--plugin-dir", pluginDir(t),
		"--opt", "pin="+pin, "--opt", "server-name=*.example.com",
		"--bad", "pin=sha256//"+strings.Repeat("A", 20), "--bad", "server-name=[oops",
		"pyspki")
}
