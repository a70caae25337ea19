package cli

import "github.com/spf13/cobra"

// extraCommands lists the user-facing commands, in help order.
func (a *app) extraCommands() []*cobra.Command {
	return []*cobra.Command{
		a.demoCommand(),
		a.certCommand(),
		a.fingerprintCommand(),
		a.serveCommand(),
		a.sendCommand(),
		a.verifyCommand(),
		a.proxyCommand(),
		a.compareCommand(),
		a.benchCommand(),
		a.verifiersCommand(),
	}
}
