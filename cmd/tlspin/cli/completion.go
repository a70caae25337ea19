package cli

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/policy"
	"github.com/tlspin/tlspin/verifiers/builtin"
)

// certExts are the file name endings offered for certificate and key flags.
var certExts = []string{"pem", "crt", "cer", "der", "key"}

// registerCompletions teaches shell completion (cobra's `completion`
// command) the values of tlspin's flags and arguments. It runs on the
// built tree, so that flags registered anywhere (verifierflags.go
// included) are found by name.
func (a *app) registerCompletions(root *cobra.Command) {
	fixed := func(vals ...cobra.Completion) cobra.CompletionFunc {
		return cobra.FixedCompletions(vals, cobra.ShellCompDirectiveNoFileComp)
	}
	algos := make([]cobra.Completion, len(pin.Algos))
	for i, al := range pin.Algos {
		algos[i] = string(al)
	}
	formats := make([]cobra.Completion, len(pin.Formats))
	for i, f := range pin.Formats {
		formats[i] = string(f)
	}
	keyTypes := fixed(string(certs.RSA), string(certs.ECDSA), string(certs.Ed25519))
	files := func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return certExts, cobra.ShellCompDirectiveFilterFileExt
	}
	byFlag := map[string]cobra.CompletionFunc{
		"algo":       fixed(algos...),
		"format":     fixed(formats...),
		"type":       keyTypes,
		"require":    fixed(string(policy.All), string(policy.Any)),
		"half-close": fixed("always", "auto", "never"),
		"side":       fixed("server", "client"),
		"log-level":  fixed("trace", "debug", "info", "warn", "error", "off"),
		"verifier":   a.completeVerifier,
		"cert":       files,
		"key":        files,
		"ref":        files,
		"ref-key":    files,
		"ref-ca":     files,
		"ca-cert":    files,
		"ca-key":     files,
	}
	// bench and compare take a key type, not a key file, as --key.
	keyTypeOf := map[string]cobra.CompletionFunc{
		"bench":   fixed(string(certs.ECDSA), string(certs.RSA)),
		"compare": keyTypes,
	}

	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		visit := func(f *pflag.Flag) {
			fn, ok := byFlag[f.Name]
			if !ok {
				return
			}
			if kt, ok := keyTypeOf[c.Name()]; ok && f.Name == "key" {
				fn = kt
			}
			// Each flag once: persistent flags are seen from every child.
			if _, done := c.GetFlagCompletionFunc(f.Name); !done {
				c.RegisterFlagCompletionFunc(f.Name, fn)
			}
		}
		c.LocalFlags().VisitAll(visit)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for _, c := range root.Commands() {
		if c.Name() == "verifiers" {
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return a.completeVerifier(cmd, args, toComplete)
			}
		}
	}
}

// completeVerifier offers the verifier names there are: the built-in ones
// and the plugins on the search path (--plugin-dir, $TLSPIN_PLUGIN_PATH,
// next to tlspin, $PATH). A value with a slash is a path to a plugin.
func (a *app) completeVerifier(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if strings.ContainsRune(toComplete, '/') {
		return nil, cobra.ShellCompDirectiveDefault
	}
	if name, opts, ok := strings.Cut(toComplete, ":"); ok {
		return completeOptions(cmd, name, opts)
	}
	found, err := a.finder().List()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	reg := builtin.New(nil)
	var out []cobra.Completion
	for _, f := range found {
		if (cmd.Name() == "bench" || cmd.Name() == "compare") && f.Source != host.SourceBuiltin {
			continue // these measure built-ins only
		}
		desc := "plugin " + f.Path
		if f.Source == host.SourceBuiltin {
			desc = "built-in"
			if v, err := reg.Lookup(f.Name); err == nil {
				if d, err := v.Describe(cmd.Context()); err == nil {
					desc = d.Summary
				}
			}
		}
		out = append(out, cobra.CompletionWithDesc(f.Name, desc))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeOptions offers the option names of built-in verifier name after
// the options already written (NAME:KEY=VALUE,...), as NAME:...,KEY=. A
// plugin's options would take starting it: none are offered.
func completeOptions(cmd *cobra.Command, name, written string) ([]cobra.Completion, cobra.ShellCompDirective) {
	v, err := builtin.New(nil).Lookup(name)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	d, err := v.Describe(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	prefix := name + ":"
	if i := strings.LastIndexByte(written, ','); i >= 0 {
		prefix += written[:i+1]
	}
	var out []cobra.Completion
	for _, o := range d.Options {
		out = append(out, cobra.CompletionWithDesc(prefix+o.Name+"=", o.Description))
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}
