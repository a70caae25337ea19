package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin/core/conformance"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/bench"
	"github.com/tlspin/tlspin/internal/printable"
)

type checkFlags struct {
	opts, bad []string
	samples   int
	json      bool
}

func (a *app) checkCommand() *cobra.Command {
	f := &checkFlags{}
	var items strings.Builder
	for _, it := range conformance.Items {
		fmt.Fprintf(&items, "  %-20s %s\n", it.Name, it.Requires)
	}
	c := &cobra.Command{
		Use:   "check [--opt KEY=VALUE]... [--bad KEY=VALUE]... NAME",
		Short: "check that a verifier plugin, in any language, keeps the host's contract",
		Long: `Run a verifier plugin the way the host does and check it item by item,
printing pass, fail or skip for each; exit 1 if any item fails.

NAME is found like --verifier NAME (--plugin-dir first, then
$TLSPIN_PLUGIN_PATH, next to tlspin, $PATH), or is a path; built-in
verifiers can be checked too. --plugin-sha256 and --plugin-checksums pin
the file that runs, as for send, and one with another SHA-256 is refused,
never run; a built-in is checked as tlspin re-executed serves it, so its
pin is then the tlspin binary's sum, not tlspin-builtins'. The plugin
gets the environment send would give it. tlspin dials it itself, over the channel send would use (on
Linux plain gRPC on a private unix socket whose server the kernel names,
elsewhere mutual TLS; see docs/threat-model.md), and watches its stdout.

--opt gives a configuration the verifier must accept (Verify runs under
it); --bad gives values it must refuse. Each is KEY=VALUE, repeatable.

Items:
` + items.String() + `
Latency is measured through gRPC on this machine: compare plugins by
running them here, one after the other.`,
		Example: `  tlspin verifiers check --plugin-dir ./bin --opt san=*.example.com --bad max-days=soon sanexpiry
  tlspin verifiers check --opt pin=00112233445566778899aabbccddeeff --bad pin=zz md5pin
  tlspin verifiers check --json ./tlspin-verifier-pyspki`,
		Args: argSpec{min: 1, max: 1, takes: "one verifier NAME or path to a plugin", tooFew: "give the verifier to check", tooMany: "one at a time"}.check,
		RunE: func(cmd *cobra.Command, args []string) error { return a.runCheck(cmd, f, args[0]) },
	}
	fs := c.Flags()
	fs.StringArrayVar(&f.opts, "opt", nil, "KEY=VALUE of a configuration the verifier must accept (repeatable)")
	fs.StringArrayVar(&f.bad, "bad", nil, "KEY=VALUE the verifier must refuse with INVALID_ARGUMENT (repeatable; each tried alone)")
	fs.IntVar(&f.samples, "samples", 200, "Verify calls the latency is measured on")
	fs.BoolVar(&f.json, "json", false, "print JSON")
	return c
}

// checkJSONSchema names the layout of verifiers check --json.
const checkJSONSchema = "tlspin.verifiers-check/v1"

func (a *app) runCheck(cmd *cobra.Command, f *checkFlags, name string) error {
	opts, err := keyValues("--opt", f.opts)
	if err != nil {
		return err
	}
	bad, err := keyValues("--bad", f.bad)
	if err != nil {
		return err
	}
	if f.samples < 1 {
		return usagef("--samples %d: want at least 1", f.samples)
	}
	// The check is of the plugin contract, go-plugin's gRPC: a built-in is
	// checked as tlspin re-executed serves it, not as tlspin-builtins does
	// (tlspin's own protocol, which only tlspin speaks).
	lc, err := a.launchConfig()
	if err != nil {
		return err
	}
	lc.Builtins, lc.BuiltinsWhyNot = "", "verifiers check runs built-ins over go-plugin's gRPC"
	// Pinned as send pins it: the file check runs must have the sum
	// --plugin-sha256 or --plugin-checksums gives (for a built-in, the
	// tlspin binary, which is what runs it here).
	found, sum, err := lc.FindOne(name)
	if err != nil {
		return usageError{err}
	}
	rep, err := conformance.Run(cmd.Context(), conformance.Target{
		Name: found.Name, Path: found.Path, Args: found.Args, SHA256: sum,
		Env: a.hostConfig().Env, Options: opts, Bad: bad,
	}, conformance.Config{StartTimeout: a.g.startTimeout, CallTimeout: a.g.verifyTimeout, Samples: f.samples})
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if f.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Schema string  `json:"schema"`
			Source string  `json:"source"`
			P50us  float64 `json:"verify_p50_us"`
			P90us  float64 `json:"verify_p90_us"`
			Failed int     `json:"failed"`
			*conformance.Report
		}{checkJSONSchema, string(found.Source), bench.Micros(rep.P50), bench.Micros(rep.P90), rep.Failed(), rep}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "checking %s (%s", rep.Name, found.Source)
		if found.Path != "" {
			fmt.Fprintf(out, ": %s", strings.Join(append([]string{found.Path}, found.Args...), " "))
		}
		fmt.Fprintln(out, ")")
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, r := range rep.Results {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(r.Status)), r.Item, printable.Escape(r.Detail))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if rep.P50 > 0 {
			fmt.Fprintf(out, "Verify latency: p50 %s\n", rep.P50.Round(time.Microsecond))
		}
	}
	if n := rep.Failed(); n > 0 {
		return fmt.Errorf("verifiers check: %s failed %d of %d items", rep.Name, n, len(rep.Results))
	}
	return nil
}

// keyValues parses repeated KEY=VALUE flags.
func keyValues(flag string, list []string) (verify.Options, error) {
	o := verify.Options{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("%s %q: want KEY=VALUE", flag, kv)
		}
		o[k] = append(o[k], v)
	}
	return o, nil
}
