package conformance_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/conformance"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// from lists item and every item after it up to shutdown: those the
// checker cannot check after a crash or without a connection (stdout it
// checks whenever there was a handshake).
func from(item string) []string {
	var out []string
	for _, it := range conformance.Items {
		if (it.Name == item || len(out) > 0) && it.Name != conformance.ItemStdout {
			out = append(out, it.Name)
		}
	}
	return out
}

// TestBrokenPlugins runs the checker on test plugins that each break one
// rule, and on one that breaks none: each fails exactly the items its
// fault explains (those after a crash or a failed connection cannot be
// checked), with a detail that says what was wrong.
func TestBrokenPlugins(t *testing.T) {
	tests := []struct {
		mode   string
		fails  []string
		detail string // in the first failed item's detail
	}{
		{"good", nil, ""},
		{"stdout", []string{conformance.ItemStdout}, `bytes after the handshake line, starting "configuring, says the plugin on stdout"`},
		{"gostdout", []string{conformance.ItemStdout}, `bytes written to stdout after the handshake, starting "configuring, says the Go plugin": go-plugin carries them`},
		{"wrongname", []string{conformance.ItemDescribeName}, `Describe says "somethingelse", the file says "wrongname"`},
		{"eqname", []string{conformance.ItemDescribe}, `option "max=days" cannot be given`},
		{"lax", []string{conformance.ItemConfigureUnknown, conformance.ItemConfigureMissing, conformance.ItemConfigureRepeat, conformance.ItemConfigureBad}, "accepted tlspin-check-no-such-option=1"},
		{"crashgarbage", append([]string{conformance.ItemVerifyGarbage, conformance.ItemVerifyErrors}, from(conformance.ItemLatency)...), "garbage leaf: the process died"},
		{"slowexit", []string{conformance.ItemShutdown}, "still running 1s after Shutdown"},
		{"undecided", []string{conformance.ItemVerifyScenarios}, `no verdict in 18 scenarios: every answer was an error, e.g. same (client-verifies-server): Unknown "the pin database is unreachable"`},
		// One call hangs, and the others are not made: each would wait a
		// whole call timeout, over two minutes of silence with the
		// host's 5 s (a call timeout of 1 s here).
		{"hang", []string{conformance.ItemVerifyScenarios, conformance.ItemVerifyEmpty, conformance.ItemVerifyGarbage, conformance.ItemVerifyErrors, conformance.ItemLatency},
			"same (client-verifies-server): no answer within 1s; the other scenarios not asked, since the plugin hangs"},
		{"opendir", from(conformance.ItemChannelSocket), `has mode -rwxr-xr-x: other users can reach the socket`},
		{"otherpgrp", from(conformance.ItemChannelSocket), "not by the plugin"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			path := testbin.Build(t, "./core/conformance/testdata/plugins", "tlspin-verifier-"+tc.mode)
			cfg := conformance.Config{Samples: 20}
			if tc.mode == "hang" {
				cfg.CallTimeout = time.Second
			}
			rep, err := conformance.Run(context.Background(), conformance.Target{
				Name:    tc.mode,
				Path:    path,
				Env:     host.PluginEnv(os.Getenv),
				Options: verify.Options{"want": {"reject"}},
				Bad:     verify.Options{"want": {"maybe"}},
			}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var failed []string
			for _, r := range rep.Results {
				if r.Status == conformance.Fail {
					failed = append(failed, r.Item)
				}
			}
			if !slices.Equal(failed, tc.fails) {
				t.Fatalf("failed items %q, want %q; report:\n%s", failed, tc.fails, show(rep))
			}
			if rep.Failed() != len(tc.fails) {
				t.Fatalf("Failed() = %d, want %d", rep.Failed(), len(tc.fails))
			}
			if len(tc.fails) > 0 {
				r, _ := rep.Result(tc.fails[0])
				if !strings.Contains(r.Detail, tc.detail) {
					t.Fatalf("%s: detail %q, want it to contain %q", r.Item, r.Detail, tc.detail)
				}
			}
			if len(rep.Results) != len(conformance.Items) {
				t.Fatalf("%d results for %d items:\n%s", len(rep.Results), len(conformance.Items), show(rep))
			}
			// The socket's directory goes with the run, whether the
			// plugin exited when asked to or had to be killed.
			r, _ := rep.Result(conformance.ItemHandshake)
			sock, _, ok := strings.Cut(strings.TrimPrefix(r.Detail, "unix "), ", ")
			if !ok || !filepath.IsAbs(sock) {
				t.Fatalf("handshake detail %q names no socket", r.Detail)
			}
			if _, err := os.Stat(filepath.Dir(sock)); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the directory of %s is left after the run (%v)", sock, err)
			}
		})
	}
}

// TestNotAPlugin checks an executable that never prints a handshake.
func TestNotAPlugin(t *testing.T) {
	rep, err := conformance.Run(context.Background(), conformance.Target{Name: "true", Path: "/bin/true"}, conformance.Config{})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := rep.Result(conformance.ItemHandshake)
	if r.Status != conformance.Fail || !strings.Contains(r.Detail, "stdout closed before any line") {
		t.Fatalf("handshake: %+v", r)
	}
	if rep.Failed() != len(conformance.Items) {
		t.Fatalf("%d items failed, want all:\n%s", rep.Failed(), show(rep))
	}
}

func show(rep *conformance.Report) string {
	var b strings.Builder
	for _, r := range rep.Results {
		b.WriteString(string(r.Status) + " " + r.Item + ": " + r.Detail + "\n")
	}
	return b.String()
}

// TestSocketWithoutADirectory is the attack of a plugin on an abstract
// socket, which any local user can connect to: the checker looked at the
// directory of "@name", the working directory, and passed the socket
// whenever that was private. It must fail channel-socket from any
// directory, saying why.
func TestSocketWithoutADirectory(t *testing.T) {
	path := testbin.Build(t, "./core/conformance/testdata/plugins", "tlspin-verifier-abstract")
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Chdir(private)
	rep, err := conformance.Run(context.Background(), conformance.Target{
		Name: "abstract", Path: path, Env: host.PluginEnv(os.Getenv),
		Options: verify.Options{"want": {"reject"}}, Bad: verify.Options{"want": {"maybe"}},
	}, conformance.Config{Samples: 5})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := rep.Result(conformance.ItemChannelSocket)
	if r.Status != conformance.Fail || !strings.Contains(r.Detail, "not a file named by an absolute path") {
		t.Fatalf("ATTACK: channel-socket %s: %s\n%s", r.Status, r.Detail, show(rep))
	}
}

// TestBadValuesEachAlone: --bad given twice for one key tries each value
// alone, as the help says. Tried together, a plugin refused them for
// repeating the key, and a value it accepts passed as refused; the report
// showed "want=maybe,want=allow", which reads as one configuration.
func TestBadValuesEachAlone(t *testing.T) {
	path := testbin.Build(t, "./core/conformance/testdata/plugins", "tlspin-verifier-good")
	tests := []struct {
		name   string
		bad    verify.Options
		status conformance.Status
		detail string
	}{
		{"all refused", verify.Options{"want": {"maybe", "sometimes"}, "zz": {"1"}}, conformance.Pass,
			`refused each alone with INVALID_ARGUMENT naming the option: "want=maybe", "want=sometimes", "zz=1"`},
		{"one accepted", verify.Options{"want": {"maybe", "allow"}}, conformance.Fail, "accepted want=allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := conformance.Run(context.Background(), conformance.Target{
				Name: "good", Path: path, Env: host.PluginEnv(os.Getenv),
				Options: verify.Options{"want": {"reject"}}, Bad: tt.bad,
			}, conformance.Config{Samples: 5})
			if err != nil {
				t.Fatal(err)
			}
			r, _ := rep.Result(conformance.ItemConfigureBad)
			if r.Status != tt.status || !strings.Contains(r.Detail, tt.detail) {
				t.Fatalf("configure-bad-value %s: %s; want %s with %q\n%s", r.Status, r.Detail, tt.status, tt.detail, show(rep))
			}
		})
	}
}
