package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/printable"
	"github.com/tlspin/tlspin/verifiers/builtin"
)

func (a *app) verifiersCommand() *cobra.Command {
	asJSON := false
	c := &cobra.Command{
		Use:   "verifiers [NAME]",
		Short: "list the verifiers there are, or describe one",
		Long: `Without NAME, list every verifier: the built-in ones, and every
tlspin-verifier-NAME executable on the plugin search path (--plugin-dir,
$TLSPIN_PLUGIN_PATH, next to tlspin, $PATH), with where it was found.

With NAME (or a path to a plugin executable), start that verifier as a
plugin, exactly as send and serve would, and show its summary and options.
--plugin-sha256 and --plugin-checksums pin it as they do for send: a
plugin whose SHA-256 is not the pinned one is refused, never run.`,
		Example: `  tlspin verifiers
  tlspin verifiers spkipin
  tlspin --plugin-dir ./plugins verifiers myverifier`,
		Args: argSpec{min: 0, max: 1, takes: "at most one verifier NAME or path to a plugin", tooMany: "one at a time"}.check,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return a.describeVerifier(cmd, args[0], asJSON)
			}
			return a.listVerifiers(cmd, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.AddCommand(a.checkCommand())
	return c
}

type verifierListing struct {
	Name     string   `json:"name"`
	Source   string   `json:"source"`
	Path     string   `json:"path,omitempty"`
	Summary  string   `json:"summary,omitempty"`
	Shadowed []string `json:"ignored_shadows,omitempty"`
	Unusable string   `json:"unusable,omitempty"`
}

func (a *app) listVerifiers(cmd *cobra.Command, asJSON bool) error {
	found, err := a.finder().List()
	if err != nil {
		return err
	}
	reg := builtin.New(nil)
	var rows []verifierListing
	for _, f := range found {
		row := verifierListing{Name: f.Name, Source: string(f.Source), Shadowed: f.Shadowed, Unusable: f.Unusable}
		if f.Source == host.SourceBuiltin {
			if v, err := reg.Lookup(f.Name); err == nil {
				if d, err := v.Describe(cmd.Context()); err == nil {
					row.Summary = d.Summary
				}
			}
		} else {
			row.Path = f.Path
		}
		rows = append(rows, row)
	}
	out := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tFROM\tSUMMARY")
	for _, r := range rows {
		what := r.Summary
		if r.Path != "" {
			what = r.Path + "  (tlspin verifiers " + r.Name + " for details)"
		}
		if r.Unusable != "" {
			what = r.Path + "  UNUSABLE: " + r.Unusable
		}
		// Names and paths are files' names, which whoever could write a
		// plugin directory chose.
		fmt.Fprintf(tw, "%s\t%s\t%s\n", printable.Escape(r.Name), r.Source, printable.Escape(what))
		for _, s := range r.Shadowed {
			fmt.Fprintf(tw, "\t\tignored %s: cannot shadow the built-in %s\n", printable.Escape(s), r.Name)
		}
	}
	return tw.Flush()
}

func (a *app) describeVerifier(cmd *cobra.Command, name string, asJSON bool) error {
	// Found as send would find it, and pinned as send would pin it
	// (--plugin-sha256, --plugin-checksums): describing it runs it.
	lc, err := a.launchConfig()
	if err != nil {
		return err
	}
	f, sum, err := lc.FindOne(name)
	if err != nil {
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2 // cobra's default for commands
		}
		if s := cmd.SuggestionsFor(name); errors.Is(err, host.ErrUnknownVerifier) && len(s) > 0 {
			// "verifiers chek" is a typo of a subcommand, not a plugin:
			// said first, before the list of verifiers.
			return usageError{fmt.Errorf("did you mean %q? %w", cmd.CommandPath()+" "+s[0], err)}
		}
		return usageError{err}
	}
	spec := f.Spec(nil)
	spec.SHA256 = sum
	d, err := host.Describe(cmd.Context(), spec, a.hostConfig())
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(describeJSON(d, f))
	}
	// The description is the plugin's to write: escape it, so that it
	// cannot retitle the window, clear the screen or forge lines.
	fmt.Fprintf(out, "%s", printable.Escape(d.Name))
	if d.Version != "" {
		fmt.Fprintf(out, " (version %s)", printable.Escape(d.Version))
	}
	fmt.Fprintf(out, ": %s\nfrom: %s", printable.Escape(d.Summary), f.Source)
	if path := f.Path; path != "" {
		// For a built-in, the file that runs it: what --plugin-sha256
		// pins. /proc/self/exe is this very binary.
		if path == lc.SelfExec {
			path = lc.Self
		}
		fmt.Fprintf(out, " (%s)", printable.Escape(path))
	}
	fmt.Fprintln(out, "\noptions:")
	if len(d.Options) == 0 {
		fmt.Fprintln(out, "  (none)")
	}
	for _, o := range d.Options {
		var tags []string
		if o.Required {
			tags = append(tags, "required")
		}
		if o.Repeated {
			tags = append(tags, "repeatable")
		}
		tag := ""
		if len(tags) > 0 {
			tag = " (" + strings.Join(tags, ", ") + ")"
		}
		fmt.Fprintf(out, "  %s%s\n      %s\n", printable.Escape(o.Name), tag, printable.Escape(o.Description))
	}
	fmt.Fprintf(out, "usage: --verifier %s:KEY=VALUE,... or --verifier %s --opt KEY=VALUE\n", name, name)
	return nil
}

// verifierDoc is `verifiers NAME --json`.
type verifierDoc struct {
	Name    string      `json:"name"`
	Version string      `json:"version,omitempty"`
	Summary string      `json:"summary"`
	Options []optionDoc `json:"options"`
	Source  string      `json:"source"`
	Path    string      `json:"path,omitempty"`
}

type optionDoc struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Required    bool   `json:"required"`
	Repeated    bool   `json:"repeated"`
}

func describeJSON(d *verify.Description, f host.Found) verifierDoc {
	doc := verifierDoc{Name: d.Name, Version: d.Version, Summary: d.Summary, Options: []optionDoc{}, Source: string(f.Source), Path: f.Path}
	for _, o := range d.Options {
		doc.Options = append(doc.Options, optionDoc{Name: o.Name, Description: o.Description, Required: o.Required, Repeated: o.Repeated})
	}
	return doc
}
