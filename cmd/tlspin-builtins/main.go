// Command tlspin-builtins runs tlspin's built-in verifiers as plugins
// that start in a few milliseconds; tlspin starts it, a user never does.
// See internal/builtinplugin.
package main

import (
	"os"

	"github.com/tlspin/tlspin/internal/builtinplugin"
)

func main() { os.Exit(builtinplugin.Main(os.Args[1:], os.Stdout, os.Stderr)) }
