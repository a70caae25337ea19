package cli

import (
	"fmt"
	"strconv"
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
	for _, c := range root.Commands() {
		if c.Name() == "completion" && c.Example == "" {
			c.Example = `  source <(tlspin completion bash)
  tlspin completion zsh > "${fpath[1]}/_tlspin"
  tlspin completion bash --help     # how to load it for every new shell`
		}
	}
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

// argSpec is a command's positional arguments: from min to max (-1: no
// limit). A wrong number is a usage error that says what the command
// takes, the hint for too few or too many, and its usage line: cobra's
// own ("accepts between 1 and 2 arg(s), received 3") says neither.
type argSpec struct {
	min, max        int
	takes           string
	tooFew, tooMany string
}

func (s argSpec) check(cmd *cobra.Command, args []string) error {
	var hint string
	switch n := len(args); {
	case n < s.min:
		hint = s.tooFew
	case s.max >= 0 && n > s.max:
		hint = s.tooMany
	default:
		return nil
	}
	name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	msg := fmt.Sprintf("%s takes %s, got %d argument(s)", name, s.takes, len(args))
	if s.max == 0 {
		// The usual slip: a value without its flag (serve 8443).
		msg = fmt.Sprintf("%s takes no arguments, got %s", name, quoteArgs(args))
	}
	if hint != "" {
		msg += ": " + hint
	}
	return laidOut{usageError{fmt.Errorf("%s\nUsage: %s", msg, cmd.UseLine())}}
}

// noArgs is the argument check of a command that takes none; hint says
// where what the user typed belongs.
func noArgs(hint string) cobra.PositionalArgs {
	return argSpec{max: 0, tooMany: hint}.check
}

// quoteArgs quotes the first few arguments for a message.
func quoteArgs(args []string) string {
	const most = 3
	q := make([]string, 0, most+1)
	for _, a := range args[:min(len(args), most)] {
		q = append(q, strconv.Quote(a))
	}
	if len(args) > most {
		q = append(q, fmt.Sprintf("and %d more", len(args)-most))
	}
	return strings.Join(q, " ")
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
