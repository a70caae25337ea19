// Package robust holds tlspin's end-to-end robustness tests: mutual TLS
// with every built-in verifier, a chaos test against a server whose
// verifier plugin is killed and stopped, orphan tests for every way the
// host can exit, and interop with real openssl. They run the real tlspin
// binary (built once) and real plugin processes, on loopback only.
package robust

import (
	"testing"

	"github.com/tlspin/tlspin/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }
