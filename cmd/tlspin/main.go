// Command tlspin is a TLS client and server whose trust is a pin, decided
// by verifier plugins that run as separate processes. Run `tlspin --help`.
package main

import (
	"os"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
)

func main() { os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
