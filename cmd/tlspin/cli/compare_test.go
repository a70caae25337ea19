package cli_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/internal/compare"
	"github.com/tlspin/tlspin/internal/testbin"
)

// run runs the real tlspin binary, so that built-in verifiers run as
// real plugin processes of it.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runEnv(t, nil, args...)
}

// runEnv runs tlspin with env added to (and overriding) the test's own.
func runEnv(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(testbin.Tlspin(t), append([]string{"--log-level", "error"}, args...)...)
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir()), env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

type compareJSON struct {
	Schema  *int `json:"schema"`
	Results []struct {
		Verifier string `json:"verifier"`
		Scenario string `json:"scenario"`
		Accepted *bool  `json:"accepted"`
		Failed   *bool  `json:"failed"`
		Reason   string `json:"reason"`
	} `json:"results"`
	Verifiers []struct {
		Name        string   `json:"name"`
		InProcessUs *float64 `json:"inprocess_us"`
		PluginUs    *float64 `json:"plugin_us"`
		PinBytes    *int     `json:"pin_bytes"`
		Note        *string  `json:"note"`
		Failed      *bool    `json:"failed"`
		Skipped     *bool    `json:"skipped"`
	} `json:"verifiers"`
	SkippedScenarios []string `json:"skipped_scenarios"`
}

// TestCompare runs the default comparison through real plugins and checks
// the pattern each strategy must show, from the JSON, and the HTML page.
func TestCompare(t *testing.T) {
	page := filepath.Join(t.TempDir(), "compare.html")
	stdout, stderr, code := run(t, "compare", "--json", "--samples", "20", "--html", page)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc compareJSON
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, stdout)
	}
	if doc.Schema == nil || *doc.Schema != compare.Schema {
		t.Errorf("schema = %v, want %d", doc.Schema, compare.Schema)
	}
	got := map[[2]string]bool{}
	for _, r := range doc.Results {
		if strings.Contains(r.Reason, "tlspin-compare-") || strings.Contains(r.Reason, os.TempDir()) {
			t.Errorf("reason names a temporary path: %q", r.Reason)
		}
		if r.Accepted == nil || r.Failed == nil || *r.Failed || r.Reason == "" {
			t.Errorf("result %+v lacks accepted or reason", r)
			continue
		}
		got[[2]string{r.Verifier, r.Scenario}] = *r.Accepted
	}
	ran := map[string]bool{}
	for _, v := range doc.Verifiers {
		if v.Skipped == nil {
			t.Errorf("verifier %q lacks skipped", v.Name)
			continue
		}
		if *v.Skipped {
			t.Logf("%s skipped: %v", v.Name, v.Note)
			continue
		}
		if v.InProcessUs == nil || v.PluginUs == nil || v.PinBytes == nil || v.Note == nil {
			t.Errorf("verifier %q lacks a field", v.Name)
			continue
		}
		ran[v.Name] = true
		if *v.PluginUs <= 0 || *v.InProcessUs <= 0 || *v.PinBytes <= 0 {
			t.Errorf("verifier %q: costs and pin size must be positive: %+v", v.Name, v)
		}
		if v.Name == "md5pin" && !strings.Contains(*v.Note, "collision-broken") {
			t.Errorf("md5pin note does not say MD5 is collision-broken: %q", *v.Note)
		}
	}
	for _, must := range []string{"md5pin"} {
		if !ran[must] {
			t.Fatalf("%s did not run", must)
		}
	}
	const A, R = true, false
	// The pattern each strategy must show, scenario by scenario.
	want := map[string]map[string]bool{
		"md5pin":    {"same": A, "renewed": R, "rekeyed": R, "other-ca": R, "lookalike": R, "forged-chain": R, "expired": R, "intermediate-rotated": R, "stolen-cert-no-key": R},
		"sha256pin": {"same": A, "renewed": R, "rekeyed": R, "other-ca": R, "lookalike": R, "forged-chain": R, "expired": R, "intermediate-rotated": R, "stolen-cert-no-key": R},
		"spkipin":   {"same": A, "renewed": A, "rekeyed": R, "other-ca": A, "lookalike": R, "forged-chain": R, "expired": A, "intermediate-rotated": A, "stolen-cert-no-key": R},
		// The issuing intermediate pinned: any leaf it signs, never one
		// that only carries it (forged-chain), nor an expired one.
		"spkipin:chain=ca": {"same": A, "renewed": A, "rekeyed": A, "other-ca": R, "lookalike": R, "forged-chain": R, "expired": R, "intermediate-rotated": R, "stolen-cert-no-key": R},
		"allowlist":        {"same": A, "renewed": R, "rekeyed": R, "lookalike": R, "forged-chain": R, "stolen-cert-no-key": R},
		"tofu":             {"same": A, "renewed": A, "rekeyed": R, "lookalike": R, "forged-chain": R, "stolen-cert-no-key": R},
		"ca":               {"same": A, "renewed": A, "rekeyed": A, "other-ca": R, "lookalike": R, "forged-chain": R, "expired": R, "intermediate-rotated": A, "stolen-cert-no-key": R},
	}
	for v, scen := range want {
		if !ran[v] {
			continue
		}
		for s, w := range scen {
			a, ok := got[[2]string{v, s}]
			if !ok {
				t.Errorf("no result for %s × %s", v, s)
			} else if a != w {
				t.Errorf("%s × %s: accepted = %v, want %v", v, s, a, w)
			}
		}
	}
	checkPage(t, page, got)
}

// checkPage parses the HTML report and checks that every matrix cell says
// and is coloured what the JSON said.
func checkPage(t *testing.T, path string, want map[[2]string]bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	root, err := html.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "td" {
			attr := map[string]string{}
			for _, a := range n.Attr {
				attr[a.Key] = a.Val
			}
			if v := attr["data-verifier"]; v != "" {
				seen++
				k := [2]string{v, attr["data-scenario"]}
				accepted, ok := want[k]
				text := ""
				if n.FirstChild != nil {
					text = strings.TrimSpace(n.FirstChild.Data)
				}
				wantText, wantColour := "reject", compare.RejectColour
				if accepted {
					wantText, wantColour = "accept", compare.AcceptColour
				}
				if !ok || text != wantText || !strings.Contains(attr["style"], wantColour) || attr["title"] == "" {
					t.Errorf("cell %v: text %q style %q title %q; want %q in %s", k, text, attr["style"], attr["title"], wantText, wantColour)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(root)
	if seen != len(want) {
		t.Errorf("page has %d matrix cells, JSON %d results", seen, len(want))
	}
}

func TestCompareUsage(t *testing.T) {
	same := filepath.Join(t.TempDir(), "same")
	if _, stderr, code := run(t, "cert", "--type", "ecdsa", "--out", same); code != cli.ExitOK {
		t.Fatalf("cert: exit %d: %s", code, stderr)
	}
	// Each is how tlspin was called (exit 2), but an --html that cannot
	// be written (exit 1).
	tests := []struct {
		name string
		args []string
		want string
		code int
	}{
		{"json and markdown", []string{"compare", "--json", "--markdown"}, "choose one", cli.ExitUsage},
		{"unknown strategy", []string{"compare", "--verifier", "nosuch"}, "nosuch", cli.ExitUsage},
		// One column per name: the second spec used to configure both
		// columns, both labelled spkipin, the first silently not as given.
		{"same verifier twice", []string{"compare", "--verifier", "spkipin", "--verifier", "spkipin:pin=sha256//tL1tfR5xCoKUYjnFqHcFUGC7voZ+YCh1XqpP4wSvUa4="}, `verifier "spkipin" given twice`, cli.ExitUsage},
		{"same verifier twice, both bare", []string{"compare", "--verifier", "md5pin", "--verifier", "md5pin"}, `verifier "md5pin" given twice`, cli.ExitUsage},
		// A CA pin compare fills in: one label, one column.
		{"CA pin twice", []string{"compare", "--verifier", "spkipin:chain=ca", "--verifier", "spkipin:chain=CA,ca=issuer"}, `verifier "spkipin:chain=ca" given twice`, cli.ExitUsage},
		{"CA pin, bad ca", []string{"compare", "--verifier", "spkipin:chain=ca,ca=top"}, `ca "top": want issuer`, cli.ExitUsage},
		{"CA pin, ca without chain", []string{"compare", "--verifier", "sha256pin:ca=root"}, `ca "root" needs chain=ca or chain=any`, cli.ExitUsage},
		{"ref-ca without ref", []string{"compare", "--ref-ca", "x.pem"}, "--ref", cli.ExitUsage},
		{"missing ref", []string{"compare", "--ref", "/nonexistent/ref.pem"}, "ref.pem", cli.ExitUsage},
		{"unknown key type", []string{"compare", "--key", "dsa"}, `--key "dsa": want ecdsa, rsa or ed25519`, cli.ExitUsage},
		{"unknown key type with --ref", []string{"compare", "--key", "dsa", "--ref", "/nonexistent/ref.pem"}, `--key "dsa"`, cli.ExitUsage},
		// It was ignored: new keys take the type of the reference's.
		{"key type with --ref", []string{"compare", "--key", "rsa", "--ref", same}, `--key "rsa" with --ref`, cli.ExitUsage},
		{"a --cert named like a scenario", []string{"compare", "--cert", same}, `scenario name "same" given twice`, cli.ExitUsage},
		// Refused before the run (nothing on stdout), naming the path given.
		{"html in a missing directory", []string{"compare", "--html", "/nonexistent/x.html"}, `--html "/nonexistent/x.html": its directory`, cli.ExitFailure},
		{"html is a directory", []string{"compare", "--html", os.TempDir()}, "is a directory; give a file name in it", cli.ExitFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := run(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) || stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d mentioning %q and no report", code, stdout, stderr, tt.code, tt.want)
			}
		})
	}
}

// TestCompareRefCA: a --ref-ca that did not issue --ref (by signature, not
// by name alone), or is no CA certificate with its key, is a usage error
// naming both files, before anything runs: the scenarios made from it
// would compare nothing meaningful.
func TestCompareRefCA(t *testing.T) {
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	mk := func(args ...string) {
		t.Helper()
		if _, stderr, code := run(t, append([]string{"cert", "--type", "ecdsa"}, args...)...); code != cli.ExitOK {
			t.Fatalf("cert %q: exit %d: %s", args, code, stderr)
		}
	}
	mk("--ca", "--cn", "Ref CA", "--out", file("ca.pem"))
	mk("--ca", "--cn", "Other CA", "--out", file("other.pem"))
	mk("--ca", "--cn", "Ref CA", "--out", file("samename.pem"))
	mk("--ca-cert", file("ca.pem"), "--out", file("ref.pem"))
	mk("--out", file("self.pem"))
	// An intermediate as tlspin cert writes it: key, certificate, its CA.
	mk("--ca", "--cn", "Inter CA", "--ca-cert", file("ca.pem"), "--out", file("inter.pem"))
	mk("--ca-cert", file("inter.pem"), "--out", file("ref2.pem"))
	caPEM, err := os.ReadFile(file("ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, crt, _ := strings.Cut(string(caPEM), "-----BEGIN CERTIFICATE-----")
	for name, data := range map[string]string{"keyonly.pem": key, "certonly.pem": "-----BEGIN CERTIFICATE-----" + crt, "empty.pem": ""} {
		if err := os.WriteFile(file(name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, ref, ca, want string
	}{
		{"another CA", "ref.pem", "other.pem", "did not issue --ref"},
		{"same name, another key", "ref.pem", "samename.pem", "signature does not verify"},
		{"not a CA", "ref.pem", "self.pem", "not a CA certificate"},
		{"the root of an intermediate", "ref2.pem", "ca.pem", "did not issue --ref"},
		{"chain", "ref2.pem", "inter.pem", "2 certificates"},
		{"key alone", "ref.pem", "keyonly.pem", "no certificate"},
		{"certificate alone", "ref.pem", "certonly.pem", "no private key"},
		{"empty", "ref.pem", "empty.pem", "empty"},
		{"self-signed reference", "self.pem", "ca.pem", "self-signed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ref, ca := file(tt.ref), file(tt.ca)
			stdout, stderr, code := run(t, "compare", "--samples", "2", "--verifier", "spkipin", "--ref", ref, "--ref-ca", ca)
			if code != cli.ExitUsage || stdout != "" {
				t.Errorf("exit %d, stdout %q; want %d and no report", code, stdout, cli.ExitUsage)
			}
			for _, w := range []string{tt.want, strconv.Quote(ref), strconv.Quote(ca)} {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not say %q", stderr, w)
				}
			}
		})
	}
	// The CA that issued it is taken.
	if _, stderr, code := run(t, "compare", "--samples", "2", "--verifier", "spkipin", "--ref", file("ref.pem"), "--ref-ca", file("ca.pem")); code != cli.ExitOK {
		t.Errorf("the issuing CA: exit %d: %s", code, stderr)
	}
}

// TestCompareBadFiles: a --ref or --cert file compare cannot use says so
// naming compare's own flags: the key of --ref goes in its file or in
// --ref-key, that of --cert in its file (compare's --key is a key type).
// A file that cannot be read, or does not hold what its flag takes, is
// how tlspin was called: a usage error (exit 2), as for --ref-ca and in
// every command.
func TestCompareBadFiles(t *testing.T) {
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	for _, f := range []string{"self.pem", "other.pem"} {
		if _, stderr, code := run(t, "cert", "--type", "ecdsa", "--out", file(f)); code != cli.ExitOK {
			t.Fatalf("cert: exit %d: %s", code, stderr)
		}
	}
	pair, err := os.ReadFile(file("self.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, crt, _ := strings.Cut(string(pair), "-----BEGIN CERTIFICATE-----")
	for name, data := range map[string]string{"keyonly.pem": key, "certonly.pem": "-----BEGIN CERTIFICATE-----" + crt} {
		if err := os.WriteFile(file(name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		args    []string
		code    int
		says    []string
		mustNot []string
	}{
		{"--ref without its key", []string{"--ref", file("certonly.pem")}, cli.ExitUsage,
			[]string{`--ref "` + file("certonly.pem") + `"`, "give the key with --ref-key, or put it in the same file"}, []string{"with --key"}},
		{"--ref-key without a key", []string{"--ref", file("certonly.pem"), "--ref-key", file("certonly.pem")}, cli.ExitUsage,
			[]string{`no private key found (file "` + file("certonly.pem") + `")`}, []string{"with --key"}},
		{"--ref-key of another certificate", []string{"--ref", file("certonly.pem"), "--ref-key", file("other.pem")}, cli.ExitUsage,
			[]string{"does not match the certificate"}, nil},
		{"--ref without a certificate", []string{"--ref", file("keyonly.pem")}, cli.ExitUsage,
			[]string{`--ref "` + file("keyonly.pem") + `"`, "no certificate found"}, []string{"with --key"}},
		{"--cert without its key", []string{"--cert", file("certonly.pem")}, cli.ExitUsage,
			[]string{`--cert "` + file("certonly.pem") + `"`, "put it in the same file as the certificate"}, []string{"--key", "--ref-key"}},
		{"--cert without a certificate", []string{"--cert", file("keyonly.pem")}, cli.ExitUsage,
			[]string{`--cert "` + file("keyonly.pem") + `"`, "no certificate found"}, []string{"--key"}},
		{"--ref missing", []string{"--ref", file("nosuch.pem")}, cli.ExitUsage,
			[]string{`--ref "` + file("nosuch.pem") + `"`, "no such file"}, nil},
		{"--ref-key missing", []string{"--ref", file("certonly.pem"), "--ref-key", file("nosuch.pem")}, cli.ExitUsage,
			[]string{`--ref-key "` + file("nosuch.pem") + `"`, "no such file"}, nil},
		{"--cert missing", []string{"--cert", file("nosuch.pem")}, cli.ExitUsage,
			[]string{`--cert "` + file("nosuch.pem") + `"`, "no such file"}, nil},
		{"--cert a directory", []string{"--cert", dir}, cli.ExitUsage,
			[]string{`--cert "` + dir + `"`, "is a directory"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := run(t, append([]string{"compare", "--samples", "2", "--verifier", "spkipin"}, tt.args...)...)
			if code != tt.code || stdout != "" {
				t.Errorf("exit %d, stdout %q; want %d and no report", code, stdout, tt.code)
			}
			for _, s := range tt.says {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr %q does not say %q", stderr, s)
				}
			}
			for _, s := range tt.mustNot {
				if strings.Contains(stderr, s) {
					t.Errorf("stderr %q says %q", stderr, s)
				}
			}
		})
	}
}

// TestCompareGivenOptionsPinSize: a verifier configured with the options
// given has no pin size compare knows; JSON says null and the table "-",
// never 0 (which reads as a pin that costs nothing to keep).
func TestCompareGivenOptionsPinSize(t *testing.T) {
	const spec = "spkipin:pin=sha256//tL1tfR5xCoKUYjnFqHcFUGC7voZ+YCh1XqpP4wSvUa4="
	stdout, stderr, code := run(t, "compare", "--json", "--samples", "5", "--verifier", spec)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc compareJSON
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, stdout)
	}
	if len(doc.Verifiers) != 1 || doc.Verifiers[0].PinBytes != nil {
		t.Errorf("pin_bytes of a verifier configured as given: want null, got %s", stdout)
	}
	stdout, stderr, code = run(t, "compare", "--samples", "5", "--verifier", spec)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	found := false
	for line := range strings.Lines(stdout) {
		if f := strings.Fields(line); len(f) > 4 && f[0] == "spkipin" {
			found = true
			if f[3] != "-" {
				t.Errorf("pin bytes column %q, want -: %q", f[3], line)
			}
		}
	}
	if !found {
		t.Errorf("no cost row for spkipin:\n%s", stdout)
	}
}

// TestCompareFailingVerifier: a verifier that crashes, hangs, errs or
// answers nothing during compare does not take the others' results with
// it. The report is printed, its cells say failed (not reject: it decided
// nothing), its costs are null, and tlspin exits 4 saying which failed.
// A plugin that hung or crashed is asked once: the rest of its cells say
// failed at once (a hung one cost --verify-timeout per scenario, 45 s at
// the default 5 s). One that errs or gives no verdict (the SDK answers
// that for it, as the verifier's own error) is asked on each.
func TestCompareFailingVerifier(t *testing.T) {
	plugins := filepath.Dir(testbin.Build(t, "./cmd/tlspin/cli/testdata/plugins/misbehave", "tlspin-verifier-misbehave"))
	for _, tt := range []struct {
		mode string
		// asked is how many scenarios the plugin was asked about (-1:
		// all); each of them says it failed so.
		asked  int
		failed string
	}{
		{"crash", 1, "restarting it"},
		{"hang", 1, "gave no verdict within"},
		{"error", -1, "unknown flag"},
		{"garbage", -1, "returned no verdict"},
	} {
		mode := tt.mode
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := run(t, "--plugin-dir", plugins, "--verify-timeout", "300ms",
				"compare", "--json", "--samples", "5", "--verifier", "misbehave:mode="+mode, "--verifier", "spkipin")
			if code != cli.ExitVerifierFailed || !strings.Contains(stderr, `"misbehave"`) {
				t.Errorf("exit %d, stderr %q; want %d naming the verifier", code, stderr, cli.ExitVerifierFailed)
			}
			var doc struct {
				Results []struct {
					Verifier, Scenario, Reason string
					Accepted                   bool
					Failed                     *bool
				}
				Verifiers []struct {
					Name     string
					PluginUs *float64 `json:"plugin_us"`
					InProc   *float64 `json:"inprocess_us"`
				}
			}
			if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
				t.Fatalf("no report: %v\nstdout %q\nstderr %q", err, stdout, stderr)
			}
			asked, scenarios := 0, 0
			for _, r := range doc.Results {
				wantFailed := r.Verifier == "misbehave"
				if r.Failed == nil || *r.Failed != wantFailed || (wantFailed && r.Accepted) {
					t.Errorf("%s × %s: failed %v accepted %v, want failed %v", r.Verifier, r.Scenario, r.Failed, r.Accepted, wantFailed)
				}
				if !wantFailed {
					continue
				}
				scenarios++
				switch {
				case strings.HasPrefix(r.Reason, "not asked"):
				case strings.Contains(r.Reason, tt.failed):
					asked++
				default:
					t.Errorf("misbehave × %s: reason %q; want %q or not asked", r.Scenario, r.Reason, tt.failed)
				}
			}
			if want := tt.asked; (want < 0 && asked != scenarios) || (want >= 0 && asked != want) {
				t.Errorf("the plugin was asked (and failed, saying %q) on %d of %d scenarios, want %d (-1: all)", tt.failed, asked, scenarios, want)
			}
			if len(doc.Results) == 0 {
				t.Error("no results")
			}
			for _, v := range doc.Verifiers {
				if measured := v.PluginUs != nil; measured != (v.Name == "spkipin") {
					t.Errorf("%s: plugin cost %v", v.Name, v.PluginUs)
				}
			}
		})
	}
	stdout, _, code := run(t, "--plugin-dir", plugins, "compare", "--samples", "5", "--verifier", "misbehave:mode=error")
	cells := 0
	for line := range strings.Lines(stdout) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "same" {
			cells++
			if f[1] != "failed" {
				t.Errorf("cell %q, want failed: %q", f[1], line)
			}
		}
	}
	if code != cli.ExitVerifierFailed || cells != 1 {
		t.Errorf("table: exit %d, want %d and a row for the reference:\n%s", code, cli.ExitVerifierFailed, stdout)
	}
}

// TestComparePluginThatDoesNotStart: a plugin that exits before its
// handshake is a failed verifier (exit 4, after the report, its cells
// failed and saying why), not the end of the run: it ended it (exit 1),
// the other verifiers' results lost. A verifier tlspin does not know is
// still a usage error, with no report.
func TestComparePluginThatDoesNotStart(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tlspin-verifier-dies"), []byte("#!/bin/sh\necho 'no handshake here' >&2\nexit 3\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := run(t, "--plugin-dir", dir, "compare", "--json", "--samples", "5", "--verifier", "dies:a=b", "--verifier", "spkipin")
	if code != cli.ExitVerifierFailed || !strings.Contains(stderr, `"dies"`) {
		t.Errorf("exit %d, stderr %q; want %d naming the verifier", code, stderr, cli.ExitVerifierFailed)
	}
	var doc struct {
		Results []struct {
			Verifier, Reason string
			Failed           bool
		}
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("no report: %v\nstdout %q\nstderr %q", err, stdout, stderr)
	}
	decided := 0
	for _, r := range doc.Results {
		switch {
		case r.Verifier == "spkipin" && !r.Failed:
			decided++
		case r.Verifier == "dies" && r.Failed && strings.Contains(r.Reason, "did not start") && strings.Contains(r.Reason, "no handshake here"):
		default:
			t.Errorf("%+v: want dies failed, saying its plugin did not start and its last words, and spkipin deciding", r)
		}
	}
	if decided == 0 {
		t.Errorf("spkipin decided nothing:\n%s", stdout)
	}
	stdout, _, code = run(t, "--plugin-dir", dir, "compare", "--verifier", "nosuch:a=b", "--verifier", "spkipin")
	if code != cli.ExitUsage || stdout != "" {
		t.Errorf("an unknown verifier: exit %d, stdout %q; want %d and no report", code, stdout, cli.ExitUsage)
	}
}

// TestCompareCAPin: CA pins filled in from the reference, through real
// plugins: the intermediate's pin dies with the intermediate, the root's
// (sent with --send-root) survives it, and neither passes a forged chain
// that carries the pinned certificate, nor the stolen certificate.
func TestCompareCAPin(t *testing.T) {
	stdout, stderr, code := run(t, "compare", "--json", "--samples", "5", "--send-root",
		"--verifier", "spkipin:chain=ca", "--verifier", "spkipin:chain=ca,ca=root", "--verifier", "allowlist:chain=any,ca=root", "--verifier", "spkipin")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc compareJSON
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, stdout)
	}
	const A, R = true, false
	root := map[string]bool{"same": A, "renewed": A, "rekeyed": A, "other-ca": R, "lookalike": R, "forged-chain": R, "expired": R, "intermediate-rotated": A, "stolen-cert-no-key": R}
	want := map[string]map[string]bool{
		"spkipin:chain=ca":            {"same": A, "renewed": A, "rekeyed": A, "other-ca": R, "lookalike": R, "forged-chain": R, "expired": R, "intermediate-rotated": R, "stolen-cert-no-key": R},
		"spkipin:chain=ca,ca=root":    root,
		"allowlist:chain=any,ca=root": root,
		"spkipin":                     {"same": A, "renewed": A, "rekeyed": R, "other-ca": A, "lookalike": R, "forged-chain": R, "expired": A, "intermediate-rotated": A, "stolen-cert-no-key": R},
	}
	n := 0
	for _, r := range doc.Results {
		w, ok := want[r.Verifier][r.Scenario]
		if !ok || r.Accepted == nil || *r.Accepted != w {
			t.Errorf("%s × %s: accepted %v (%s), want %v", r.Verifier, r.Scenario, r.Accepted, r.Reason, w)
		}
		n++
		switch {
		case r.Scenario == "forged-chain" && r.Verifier != "spkipin" && !strings.Contains(r.Reason, "does not lead from the leaf to the pinned certificate"):
			t.Errorf("%s × forged-chain: reason %q does not say the leaf does not chain to the pin", r.Verifier, r.Reason)
		case r.Scenario == "stolen-cert-no-key" && !strings.Contains(r.Reason, "did not prove it holds the certificate's private key"):
			t.Errorf("%s × stolen-cert-no-key: reason %q does not say the peer did not prove the key", r.Verifier, r.Reason)
		}
	}
	if n != 4*9 {
		t.Errorf("%d results, want %d", n, 4*9)
	}
	for _, v := range doc.Verifiers {
		if v.Note == nil || v.PinBytes == nil || *v.PinBytes != 32 {
			t.Errorf("%s: note %v, pin bytes %v; want a note and 32", v.Name, v.Note, v.PinBytes)
			continue
		}
		if strings.Contains(v.Name, "chain=") && !strings.Contains(*v.Note, "intermediate") {
			t.Errorf("%s: note %q does not say which certificate is pinned", v.Name, *v.Note)
		}
	}
}

// TestCompareSelfSignedCAPin: a self-signed reference has no CA to pin;
// the default CA-pin column is skipped, saying why, and the others run.
func TestCompareSelfSignedCAPin(t *testing.T) {
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.pem")
	if _, stderr, code := run(t, "cert", "--out", ref, "--san", "localhost"); code != cli.ExitOK {
		t.Skipf("cannot make a self-signed certificate: %s", stderr)
	}
	stdout, stderr, code := run(t, "compare", "--json", "--samples", "5", "--ref", ref)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc compareJSON
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, stdout)
	}
	for _, v := range doc.Verifiers {
		skipped := v.Skipped != nil && *v.Skipped && v.Note != nil && strings.Contains(*v.Note, "self-signed")
		if skipped != (v.Name == "spkipin:chain=ca") {
			t.Errorf("%s: skipped %v, note %v", v.Name, v.Skipped, v.Note)
		}
	}
	// Nor is there an intermediate to rotate: the scenario is left out,
	// and the JSON says why.
	if len(doc.SkippedScenarios) != 1 || !strings.HasPrefix(doc.SkippedScenarios[0], "intermediate-rotated: ") {
		t.Errorf("skipped_scenarios = %q; want intermediate-rotated's reason", doc.SkippedScenarios)
	}
}
