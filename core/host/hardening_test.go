package host_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestPinnedPluginCannotBeSwapped races launches of a pinned plugin
// against an attacker who renames another script over it in a loop: the
// unpinned script must never run. Each launch either runs the pinned
// content or is refused with ErrChecksum.
func TestPinnedPluginCannotBeSwapped(t *testing.T) {
	probe := probeBinary(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "evil-ran")
	good := writeScript(t, dir, "good", "exec "+probe+" env")
	evil := writeScript(t, dir, "evil", "echo ran >> "+marker+"\nexec "+probe+" env")
	target := filepath.Join(dir, host.ExecPrefix+"probe")
	swap := func(i int) {
		src := good
		if i%2 == 1 {
			src = evil
		}
		tmp := target + ".tmp"
		_ = os.Remove(tmp)
		if err := os.Link(src, tmp); err != nil {
			t.Error(err)
			return
		}
		if err := os.Rename(tmp, target); err != nil {
			t.Error(err)
		}
	}
	swap(0)
	sum, err := host.FileSHA256(good)
	if err != nil {
		t.Fatal(err)
	}
	// Launches go on until 200 swaps and 10 runs have happened (a refused
	// launch is quick), at most 200.
	const minSwaps, minRuns, maxLaunches = 200, 10, 200
	var swaps atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			swap(i)
			swaps.Add(1)
		}
	})
	cfg := discConfig(t)
	cfg.Logger = hclog.NewNullLogger()
	ran, refused := 0, 0
	for n := 0; n < maxLaunches && (ran < minRuns || swaps.Load() < minSwaps); n++ {
		_, err := host.Describe(context.Background(), host.Spec{Name: "probe", Path: target, SHA256: sum}, cfg)
		switch {
		case err == nil:
			ran++
		case errors.Is(err, host.ErrChecksum):
			refused++
		default:
			t.Errorf("launch %d: %v", n, err)
		}
	}
	close(done)
	wg.Wait()
	t.Logf("%d swaps: %d launches ran the pinned plugin, %d were refused", swaps.Load(), ran, refused)
	if swaps.Load() < minSwaps {
		t.Errorf("only %d swaps happened during the launches", swaps.Load())
	}
	if b, err := os.ReadFile(marker); err == nil {
		t.Fatalf("the unpinned script ran %d times", strings.Count(string(b), "\n"))
	}
	if ran == 0 {
		t.Error("the pinned plugin never ran")
	}
}

func TestRelativePluginDirRunsTheFileFound(t *testing.T) {
	bin := customBinary(t)
	dir := t.TempDir()
	want := install(t, bin, dir, host.ExecPrefix+customName)
	// A same-named impostor on $PATH: if exec searched $PATH for the bare
	// name, this is what would run.
	decoyDir := t.TempDir()
	writeScript(t, decoyDir, host.ExecPrefix+customName, "echo decoy ran >&2; exit 1")
	t.Setenv("PATH", decoyDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Chdir(dir)
	f := &host.Finder{PluginDirs: []string{"."}}
	found, err := f.Find(customName)
	if err != nil {
		t.Fatal(err)
	}
	if found.Path != want {
		t.Fatalf("Find: path %q; want the absolute %q", found.Path, want)
	}
	list, err := f.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Path != want {
		t.Fatalf("List = %+v; want %s at %s", list, customName, want)
	}
	checkSANExpiry(t, found)
	// A relative path given directly runs that file too.
	p, err := host.Start(context.Background(), host.Spec{Name: customName, Path: host.ExecPrefix + customName, Options: verify.Options{"san": {"*"}}}, discConfig(t))
	if err != nil {
		t.Fatalf("start by relative path: %v", err)
	}
	p.Close()
}

func TestNonExecutableIsListedAsUnusable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, host.ExecPrefix+"noexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	install(t, customBinary(t), dir, host.ExecPrefix+customName)
	list, err := (&host.Finder{PluginDirs: []string{dir}}).List()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range list {
		got[f.Name] = f.Unusable
	}
	if len(got) != 2 || got[customName] != "" || !strings.Contains(got["noexec"], "not executable") {
		t.Fatalf("List: %+v; want %s usable and noexec unusable because it is not executable", list, customName)
	}
}

// TestPlantedPluginIsRefused is the attack of another local user on a
// verifier plugin, which decides whom to trust: a plugin file every user
// may write, one in a directory every user may write (not sticky), one
// they own, one behind a link of theirs. Each is refused by Find, by name
// and by path, and listed as unusable, as a trust file would be refused;
// this user's plugin in this user's directory runs.
func TestPlantedPluginIsRefused(t *testing.T) {
	const other = 54321
	src := customBinary(t)
	for _, tc := range []struct {
		name    string
		plant   func(t *testing.T, dir string) string // returns the plugin directory
		refused string                                // "" for usable
	}{
		{"this user's", func(t *testing.T, dir string) string {
			install(t, src, dir, host.ExecPrefix+customName)
			return dir
		}, ""},
		{"writable by every user", func(t *testing.T, dir string) string {
			chmod(t, install(t, src, dir, host.ExecPrefix+customName), 0o777)
			return dir
		}, "may be written by every user (mode 0777)"},
		{"in a directory every user may write", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "shared")
			install(t, src, d, host.ExecPrefix+customName)
			chmod(t, d, 0o777)
			return d
		}, "which every user may write to (mode 0777, not sticky)"},
		{"another user's", func(t *testing.T, dir string) string {
			lchown(t, install(t, src, dir, host.ExecPrefix+customName), other)
			return dir
		}, "belongs to uid 54321"},
		{"behind another user's link", func(t *testing.T, dir string) string {
			real := install(t, src, filepath.Join(dir, "real"), host.ExecPrefix+customName)
			d := filepath.Join(dir, "plugins")
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(d, host.ExecPrefix+customName)
			if err := os.Symlink(real, link); err != nil {
				t.Fatal(err)
			}
			lchown(t, link, other)
			return d
		}, "a symbolic link that belongs to uid 54321"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.plant(t, t.TempDir())
			f := &host.Finder{PluginDirs: []string{dir}}
			_, findErr := f.Find(customName)
			_, pathErr := f.Find(filepath.Join(dir, host.ExecPrefix+customName))
			list, err := f.List()
			if err != nil {
				t.Fatal(err)
			}
			var unusable string
			for _, found := range list {
				if found.Name == customName {
					unusable = found.Unusable
				}
			}
			for what, got := range map[string]string{"Find by name": errText(findErr), "Find by path": errText(pathErr), "List": unusable} {
				if (got == "") != (tc.refused == "") || !strings.Contains(got, tc.refused) {
					t.Errorf("%s: %q, want refused with %q", what, got, tc.refused)
				}
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(path, 0o755) })
}

// lchown gives path to uid, which needs root: the case is skipped without.
func lchown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, -1); err != nil {
		t.Skipf("cannot give a file to another user here: %v", err)
	}
}

func TestPluginNamedOtherwiseIsWarned(t *testing.T) {
	logs := &syncbuf.Buffer{}
	cfg := discConfig(t)
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Warn})
	for _, tc := range []struct {
		name string
		warn bool
	}{{"probe", false}, {"cnpin", true}} {
		p, err := host.Start(context.Background(), host.Spec{Name: tc.name, Path: probeBinary(t), Args: []string{"env"}}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		if got := strings.Contains(logs.String(), `describes_itself_as=probe`); got != tc.warn {
			t.Errorf("started as %q: warned %v, want %v; log:\n%s", tc.name, got, tc.warn, logs.String())
		}
	}
}

// TestPluginStdinIsDevNull: a plugin reading its stdin gets EOF at once,
// and what was piped into the host stays there for the host.
func TestPluginStdinIsDevNull(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const secret = "SECRET message for the server\n"
	if _, err := w.WriteString(secret); err != nil {
		t.Fatal(err)
	}
	w.Close()
	old := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = old }()
	if got := probeSummary(t, "stdin", discConfig(t)); got != "stdin:" {
		t.Errorf("the plugin's stdin: %q; want \"stdin:\" and nothing", got)
	}
	got, err := io.ReadAll(r)
	if err != nil || string(got) != secret {
		t.Errorf("the host's stdin then held %q (%v); want %q", got, err, secret)
	}
}

func TestHostChecksOptionsForThePlugin(t *testing.T) {
	tests := []struct {
		name   string
		opts   verify.Options
		quoted string
	}{
		{"unknown option", verify.Options{"pin": {"x"}, "colour": {"red"}}, `"colour"`},
		{"missing required", verify.Options{"san": {"a", "b"}}, `"pin"`},
		{"repeated, not repeatable", verify.Options{"pin": {"x", "y"}}, `"x,y"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := host.Start(context.Background(), host.Spec{Name: "probe", Path: probeBinary(t), Args: []string{"lax"}, Options: tc.opts}, discConfig(t))
			if err == nil {
				p.Close()
				t.Fatal("the host let a bad option through to a plugin that accepts anything")
			}
			if !errors.Is(err, verify.ErrBadOption) || !strings.Contains(err.Error(), tc.quoted) {
				t.Fatalf("err = %v; want a bad-option error quoting %s", err, tc.quoted)
			}
		})
	}
	p, err := host.Start(context.Background(), host.Spec{Name: "probe", Path: probeBinary(t), Args: []string{"lax"}, Options: verify.Options{"pin": {"x"}, "san": {"a", "b"}}}, discConfig(t))
	if err != nil {
		t.Fatalf("good options: %v", err)
	}
	p.Close()
}

// TestVerifierErrorIsARejectionNotACrash: a verifier that returns an
// error, whatever its status code, keeps running (same pid, no restart);
// its peer is rejected with the verifier's error.
func TestVerifierErrorIsARejectionNotACrash(t *testing.T) {
	modes := []string{"deadline"}
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		modes = append(modes, "status="+strconv.Itoa(int(c)))
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			p := startBad(t, mode, host.Config{VerifyTimeout: 2 * time.Second})
			pid := p.Pid()
			for range 3 {
				v, err := p.Verify(context.Background(), anyReq())
				var remote *rpc.RemoteError
				if !errors.As(err, &remote) {
					t.Fatalf("verdict %+v, err %v; want the verifier's own error", v, err)
				}
				if errors.Is(err, host.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err %v is taken for the host's timeout", err)
				}
			}
			if p.Pid() != pid || p.Restarts() != 0 {
				t.Fatalf("plugin restarted (pid %d → %d, %d restarts); a returned error is a rejection", pid, p.Pid(), p.Restarts())
			}
		})
	}
	t.Run("a real crash still restarts", func(t *testing.T) {
		t.Parallel()
		p := startBad(t, "exit", host.Config{VerifyTimeout: 2 * time.Second, MaxBackoff: 100 * time.Millisecond})
		pid := p.Pid()
		if _, err := p.Verify(context.Background(), anyReq()); !errors.Is(err, rpc.ErrTransport) {
			t.Fatalf("err = %v; want ErrTransport", err)
		}
		if !wait.Until(5*time.Second, func() bool { n := p.Pid(); return p.Restarts() >= 1 && n != 0 && n != pid }) {
			t.Fatalf("crashed plugin not restarted (pid %d, restarts %d)", p.Pid(), p.Restarts())
		}
	})
}

func TestHugeAnswerIsRejectedShortly(t *testing.T) {
	p := startBad(t, "huge", host.Config{VerifyTimeout: 5 * time.Second})
	v, err := p.Verify(context.Background(), anyReq())
	if err == nil {
		t.Fatalf("a 5 MB answer was taken: allow=%v, reason of %d bytes", v.Allow, len(v.Reason))
	}
	if !errors.Is(err, rpc.ErrGarbage) || len(err.Error()) > 400 {
		t.Fatalf("err (%d bytes) = %.400v; want a short ErrGarbage", len(err.Error()), err)
	}
}

// TestPluginLogsGoByTheVerifierName: the plugin's log lines come out under
// the verifier's name, at their level, without go-plugin's @module and
// timestamp fields or the executable's name.
func TestPluginLogsGoByTheVerifierName(t *testing.T) {
	logs := &syncbuf.Buffer{}
	cfg := discConfig(t)
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "tlspin", Output: logs, Level: hclog.Info})
	p, err := host.Start(context.Background(), host.Spec{Name: "lognamed", Path: probeBinary(t), Args: []string{"log"}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The line Configure wrote after the start travels on go-plugin's stdio
	// stream, which a Close right after Start can cut short on a busy
	// machine: give it the time to arrive (it is checked below).
	wait.Until(5*time.Second, func() bool { return strings.Contains(logs.String(), "a plain line after the start") })
	p.Close()
	out := logs.String()
	t.Logf("log:\n%s", out)
	for _, want := range []string{"[INFO]  lognamed: configured: options=0", "[WARN]  lognamed: [WARN] a plain line on stderr",
		"[WARN]  lognamed: [WARN] a plain line after the start"} {
		if !strings.Contains(out, want) {
			t.Errorf("log does not say %q", want)
		}
	}
	for _, noise := range []string{"@module", "timestamp=", "lognamed.probe", "tlspin.lognamed.plugin"} {
		if strings.Contains(out, noise) {
			t.Errorf("log has %q", noise)
		}
	}
}
