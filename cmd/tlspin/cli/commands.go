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
		a.knownPinsCommand(),
		a.versionCommand(),
		a.manCommand(),
	}
}

// finishTree adds what needs the whole command tree: the --version flag
// and shell completion of flag values.
func (a *app) finishTree(root *cobra.Command) {
	addVersionFlag(root)
	a.registerCompletions(root)
}
