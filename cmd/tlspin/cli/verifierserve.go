package cli

import (
	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin/internal/launch"
)

// verifierServeCommand is the hidden command that serves a built-in
// verifier as a plugin. A host starts it with go-plugin's handshake
// variable set, and Run (tlspin.ServeBuiltin) serves it before cobra runs;
// run by hand, it prints go-plugin's explanation of what a plugin is.
func (a *app) verifierServeCommand() *cobra.Command {
	return &cobra.Command{
		Use:    launch.ServeCommand + " NAME",
		Short:  "serve a built-in verifier as a plugin (run by tlspin itself)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := launch.ServeBuiltin(args[0]); err != nil {
				return usageError{err}
			}
			return nil
		},
	}
}
