package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

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
	root.InitDefaultCompletionCmd()
	refuseUnknownSubcommands(root)
}

// refuseUnknownSubcommands makes a command that only groups others
// (known-pins, proxy, completion) refuse an argument that names none of
// them: cobra would print its help and exit 0, so a typo such as
// "known-pins lst" looked like success. Without arguments it still prints
// its help.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !c.HasParent() || !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("unknown command %q for %q (it has: %s)", args[0], cmd.CommandPath(), strings.Join(subcommandNames(cmd), ", "))
		}
		return cmd.Help()
	}
}

func subcommandNames(c *cobra.Command) []string {
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	return names
}
