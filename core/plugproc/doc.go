// Package plugproc is the life of a verifier plugin process, whatever
// protocol it speaks to its host: the handshake's magic cookie, the logger
// whose JSON lines the host re-emits, and the watch that ends the plugin
// and its children when the host goes away.
//
// It links nothing but the standard library and go-hclog, so that the
// built-in verifiers' small binary (cmd/tlspin-builtins) starts fast; the
// go-plugin SDK (core/sdk) uses it too.
package plugproc

import (
	"os"

	"github.com/hashicorp/go-hclog"
)

// The handshake's magic cookie: a host sets it in every plugin's
// environment, and a binary started without it refuses to run as a plugin.
const (
	CookieKey   = "TLSPIN_VERIFIER_PLUGIN"
	CookieValue = "8f1c2e0b6d7a4f3e9b5c1a2d3e4f5a6b"
)

// StartedByHost reports whether this process was started as a plugin.
func StartedByHost() bool { return os.Getenv(CookieKey) == CookieValue }

// Logger returns the logger a plugin should use: JSON on stderr, which the
// host parses and re-emits. Level follows $TLSPIN_LOG_LEVEL (default info).
func Logger(name string) hclog.Logger {
	lvl := hclog.LevelFromString(os.Getenv("TLSPIN_LOG_LEVEL"))
	if lvl == hclog.NoLevel {
		lvl = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      lvl,
		Output:     os.Stderr,
		JSONFormat: true,
	})
}
