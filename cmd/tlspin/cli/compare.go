package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/compare"
	"github.com/tlspin/tlspin/internal/launch"
	verifierreg "github.com/tlspin/tlspin/verifiers"
	"github.com/tlspin/tlspin/verifiers/builtin"
)

type compareFlags struct {
	ref, refKey, refCA, keyType string
	verifiers, certs            []string
	json, markdown, sendRoot    bool
	html                        string
	samples                     int
}

func (a *app) compareCommand() *cobra.Command {
	f := &compareFlags{}
	c := &cobra.Command{
		Use:   "compare [--verifier NAME ...] [--ref FILE] [--cert FILE ...]",
		Short: "put pinning strategies side by side on rotation scenarios",
		Long: `Compare pinning strategies. From a reference certificate (generated: a
leaf for localhost issued by an intermediate under a root CA; or --ref), make
the certificates a pin meets in real life:

  same                  the reference itself
  renewed               same key and names, new serial and dates
  rekeyed               new key, same names, same CA
  other-ca              same key and names, issued by another CA
  lookalike             an attacker's self-signed certificate, same subject and names
  forged-chain          an attacker's leaf claiming the real issuer but signed with its own
                        key, carrying the real intermediate and CA
  stolen-cert-no-key    the real certificate and chain, byte for byte, from a server
                        without its private key: every verifier allows the
                        certificate, and the handshake fails (the peer cannot sign
                        with the pinned key): why a pin protects at all
  expired               same key, names and CA, expired
  intermediate-rotated  same leaf key, issued by a new intermediate under the same root
  FILE                  each --cert FILE (certificate and key), by file name

Each verifier is configured to trust the reference (md5pin, sha256pin and
spkipin with its pins, allowlist with a file listing it, tofu with a pins
file primed with it, ca with its CA), and decides on every scenario through
its plugin, in a real TLS handshake on loopback.

To pin the CA instead of the leaf, name a pin verifier (md5pin, sha256pin,
spkipin, allowlist) with chain=ca or chain=any and no pin: compare fills the
pin in with the reference's CA, in a column of its own labelled as given
(spkipin:chain=ca beside spkipin). ca=issuer (the default) pins the
intermediate that issued the leaf, what a server sends after it; ca=root
pins the root, which survives intermediate-rotated, but a pin matches only
what the peer sends and the generated server sends no root: add --send-root.
Either way the leaf must chain to the pinned certificate by signature, so a
forged chain that carries it is rejected. spkipin:chain=ca is compared by
default. Prints accept/reject per
verifier and scenario, the median cost of one verification in process and
through the plugin, the pin size, and what the strategy protects against.

A verifier that crashes, hangs (its handshake waits --verify-timeout),
errs or gives no verdict is not a rejection, nor is a handshake that
never reached it (--verify-timeout too short for a loaded machine): its
cells say failed, its cost is not measured, the others are compared all
the same, and tlspin exits 4 after the report. One that hung or crashed is not asked again: the rest of
its cells say failed at once, so a hung verifier costs one timeout, not one
per scenario. So does one whose plugin does not start (it exits before
its handshake, or does not finish it in time), or that fails while
compare primes it with the reference (tofu): it is asked about no
scenario, and its cells say why. A verifier tlspin does not know, or
options it refuses, are a usage error (exit 2), before any report.

A --ref, --ref-key, --ref-ca or --cert file that does not hold what its
flag takes (a certificate and its key; for --ref-ca, the CA that issued
--ref), or cannot be read, is a usage error, exit 2, as in every command.`,
		Example: `  tlspin compare
  tlspin compare --verifier spkipin --verifier sha256pin --markdown
  tlspin compare --send-root --verifier spkipin:chain=ca --verifier spkipin:chain=ca,ca=root
  tlspin compare --ref cert.pem --cert new.pem --html compare.html`,
		Args: noArgs("add a verifier with --verifier NAME, a certificate with --cert FILE"),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runCompare(cmd, f) },
	}
	fs := c.Flags()
	fs.StringArrayVar(&f.verifiers, "verifier", nil, "verifier to compare, NAME or NAME:key=value,... (repeatable; default md5pin, sha256pin, spkipin, spkipin:chain=ca, allowlist, tofu, ca). Built-ins are configured to trust the reference; a pin verifier with chain=ca|any[,ca=issuer|root] and no pin pins the reference's CA; other options given are used as they are, and any verifier on the plugin path can be compared with its options")
	fs.StringVar(&f.ref, "ref", "", "reference certificate with its private key (default: generate one)")
	fs.StringVar(&f.refKey, "ref-key", "", "private key of --ref, if not in the same file")
	fs.StringVar(&f.refCA, "ref-ca", "", "certificate and key, in one file, of the CA that issued --ref (checked by signature), which issues its renewals (needed for a --ref that is not self-signed)")
	fs.BoolVar(&f.sendRoot, "send-root", false, "the reference's server sends its root CA too, after the intermediate (some servers do; a root pin, chain=ca,ca=root, matches only a root the peer sends)")
	fs.StringVar(&f.keyType, "key", "ecdsa", "key type of the generated reference and of new keys: ecdsa, rsa or ed25519 (not with --ref, whose key's type new keys take)")
	fs.StringArrayVar(&f.certs, "cert", nil, "extra scenario: a PEM file with a certificate and its key (repeatable)")
	fs.BoolVar(&f.json, "json", false, `print JSON: {"schema": 1, "results": [{verifier, scenario, accepted, failed, reason}], "verifiers": [{name, inprocess_us, plugin_us, pin_bytes, note, failed, skipped}], "skipped_scenarios": [why, ...]}; skipped: the verifier was not compared (its note says why); failed: the verifier decided nothing (crashed, timed out, erred, or was not asked after it hung or crashed, after priming it with the reference failed, or because its plugin did not start), so the peer was rejected to fail closed; what was not measured is null: the costs and pin size of a skipped verifier, the costs of one that failed, the in-process cost of one not built in, the pin size of one configured with the options given`)
	fs.BoolVar(&f.markdown, "markdown", false, "print Markdown tables")
	fs.StringVar(&f.html, "html", "", "also write a self-contained HTML page to FILE")
	fs.IntVar(&f.samples, "samples", 200, "Verify calls each cost is the median of")
	return c
}

func (a *app) runCompare(cmd *cobra.Command, f *compareFlags) error {
	ctx := cmd.Context()
	if f.json && f.markdown {
		return usagef("--json and --markdown: choose one")
	}
	if f.samples <= 0 {
		return usagef("--samples %d: must be positive", f.samples)
	}
	switch certs.KeyType(f.keyType) {
	case certs.ECDSA, certs.RSA, certs.Ed25519:
	default:
		return usagef("--key %q: want ecdsa, rsa or ed25519 (the key type of the generated reference and of new keys; the key of --ref goes in its file or in --ref-key)", f.keyType)
	}
	var (
		ref *compare.Reference
		err error
	)
	if f.ref != "" && cmd.Flags().Changed("key") {
		// It would be ignored: the scenarios' new keys are of the
		// reference's own type, so that only the key changes.
		return usagef("--key %q with --ref %q: new keys take the type of --ref's key; drop --key", f.keyType, f.ref)
	}
	if f.ref != "" {
		ref, err = compare.LoadReference(f.ref, f.refKey, f.refCA)
	} else {
		if f.refKey != "" || f.refCA != "" {
			return usagef("--ref-key and --ref-ca need --ref")
		}
		ref, err = compare.NewReference(certs.KeyType(f.keyType))
	}
	if err != nil {
		if f.ref != "" {
			// Unreadable, or not what the flags take.
			return badInput(err)
		}
		return err
	}
	if f.sendRoot {
		ref = ref.SendingRoot()
	}
	if f.html != "" {
		// Refused now rather than after the whole run.
		if err := checkHTMLTarget(f.html); err != nil {
			return err
		}
	}
	var extra []compare.Scenario
	for _, p := range f.certs {
		s, err := compare.CertFile(p)
		if err != nil {
			return badInput(err)
		}
		extra = append(extra, s)
	}
	dir, err := os.MkdirTemp("", "tlspin-compare-")
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	defer os.RemoveAll(dir)
	names, given, err := a.compareVerifiers(f.verifiers)
	if err != nil {
		return err
	}
	reg := builtin.New(nil)
	prog := newProgress(cmd.ErrOrStderr(), "compare")
	defer prog.Done()
	rep, err := compare.Run(ctx, compare.Config{
		Progress:  prog.Step,
		Reference: ref,
		Verifiers: names,
		Options:   given,
		Extra:     extra,
		Dir:       dir,
		Samples:   f.samples,
		Timeout:   a.g.verifyTimeout,
		InProcess: func(name string) (verify.Verifier, error) {
			v, err := reg.Lookup(name)
			if errors.Is(err, verifierreg.ErrUnknown) {
				return nil, fmt.Errorf("%q is not built into this tlspin", name)
			}
			return v, err
		},
		Start: func(ctx context.Context, name string, opts verify.Options) (compare.Plugin, error) {
			p, err := a.startPlugin(ctx, name, opts)
			if err != nil && !errors.Is(err, tlspin.ErrBadConfig) {
				// Not how it was asked (that is a usage error): the
				// plugin itself failed to start, a failed verifier.
				return nil, fmt.Errorf("%w: %w", compare.ErrNotStarted, err)
			}
			return p, err
		},
	})
	// Gone before the report is written: a reader that stops early (| head)
	// ends tlspin by SIGPIPE, before deferred calls run.
	os.RemoveAll(dir)
	if err != nil {
		if errors.Is(err, compare.ErrUnknownStrategy) || errors.Is(err, compare.ErrDuplicateVerifier) || errors.Is(err, compare.ErrDuplicateScenario) {
			return usageError{err}
		}
		return err
	}
	prog.Done()
	if f.html != "" {
		if err := writeHTML(f.html, rep); err != nil {
			return err
		}
		a.log.Info("wrote HTML report", "file", f.html)
	}
	out := cmd.OutOrStdout()
	switch {
	case f.json:
		err = rep.WriteJSON(out)
	case f.markdown:
		err = rep.WriteMarkdown(out)
	default:
		fmt.Fprintf(out, "reference: %q issued by %q; server name %s\n\n", ref.Certificate().Subject.String(), ref.Certificate().Issuer.String(), ref.ServerName)
		err = rep.WriteTable(out)
	}
	if err != nil {
		return err
	}
	// The report is written whole, the others' results included; a
	// verifier that failed is what exit 4 says, as for send.
	if failed := rep.FailedVerifiers(); len(failed) > 0 {
		return fmt.Errorf("compare: %w: %s decided nothing on some scenarios (crashed, timed out, erred or gave no verdict, was never reached by the handshake, could not be primed with the reference, or its plugin did not start), so its cells say failed and its cost was not measured; see the reasons with --json", tlspin.ErrVerifierFailed, quoteList(failed))
	}
	return nil
}

// quoteList is names quoted and joined with commas.
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// checkHTMLTarget says why --html path could not be written, if it could
// not: its directory is missing or not a directory, or path is one.
func checkHTMLTarget(path string) error {
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("compare: --html %q: its directory: %w", path, err)
	} else if !st.IsDir() {
		return fmt.Errorf("compare: --html %q: %q is not a directory", path, dir)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("compare: --html %q is a directory; give a file name in it", path)
	}
	return nil
}

// writeHTML writes the report to path through a temporary file, which
// errors do not name: the user gave path.
func writeHTML(path string, rep *compare.Report) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tlspin-compare-*.html")
	if err != nil {
		return fmt.Errorf("compare: --html %q: %w", path, unwrapPath(err))
	}
	defer os.Remove(tmp.Name())
	if err := rep.WriteHTML(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("compare: --html %q: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("compare: --html %q: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("compare: --html %q: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("compare: --html %q: %w", path, unwrapPath(err))
	}
	return nil
}

// unwrapPath drops the file name an os error carries (the temporary file's).
func unwrapPath(err error) error {
	var pe *os.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}

// compareVerifiers parses the --verifier specs of compare: the names in
// order, and the options of those given with options. Checksums pinned
// with --plugin-sha256 must name one of them.
func (a *app) compareVerifiers(list []string) ([]string, map[string]verify.Options, error) {
	specs := make([]launch.Spec, 0, len(list))
	if len(list) == 0 {
		list = compare.DefaultVerifiers()
	}
	for _, s := range list {
		sp, err := launch.ParseSpec(s)
		if err != nil {
			return nil, nil, usageError{err}
		}
		specs = append(specs, sp)
	}
	c, err := a.launchConfig()
	if err != nil {
		return nil, nil, err
	}
	if err := c.CheckPinned(specs); err != nil {
		return nil, nil, err
	}
	names := make([]string, len(specs))
	given := map[string]verify.Options{}
	for i, sp := range specs {
		names[i] = sp.Name
		if len(sp.Options) == 0 {
			continue
		}
		// A CA pin without its pin is filled in from the reference, in a
		// column of its own (spkipin:chain=ca beside spkipin).
		label, fill, err := compare.FillLabel(sp.Name, sp.Options)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("--verifier %q: %w", list[i], err)}
		}
		names[i] = label
		if !fill {
			given[sp.Name] = sp.Options
		}
	}
	return names, given, nil
}
