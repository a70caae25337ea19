package cli

import (
	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin/core/sdk"
	"github.com/tlspin/tlspin/verifiers/builtin"
)

// verifierServeCmd is the hidden subcommand the host runs to serve a
// built-in verifier as a separate process.
const verifierServeCmd = "__verifier"

func builtinArgs(name string) []string { return []string{verifierServeCmd, name} }

func (a *app) verifierServeCommand() *cobra.Command {
	return &cobra.Command{
		Use:    verifierServeCmd + " NAME",
		Short:  "serve a built-in verifier as a plugin (run by tlspin itself)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log := sdk.Logger(args[0])
			v, err := builtin.New(log).Lookup(args[0])
			if err != nil {
				return err
			}
			sdk.Serve(v)
			return nil
		},
	}
}
