package launch

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// tlspin-builtins next to tlspin is used only when it is the built-ins
// command from tlspin's own build: anything else there would decide with
// other rules than tlspin's.
func TestBuiltinsNextToTlspin(t *testing.T) {
	self := testbin.Tlspin(t)
	built := filepath.Join(filepath.Dir(self), "tlspin-builtins")
	copyTo := func(src string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "tlspin-builtins"), b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	// selfHere copies tlspin next to the sibling too, as dir/tlspin, and
	// makes it Self without SelfExec: its own build information is read.
	selfHere := func(sibling func(t *testing.T, dir string)) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			sibling(t, dir)
			b, err := os.ReadFile(self)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "tlspin"), b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name    string
		sibling func(t *testing.T, dir string)
		whyNot  string
		// given: Self is dir/tlspin, made by sibling, and SelfExec empty
		given bool
	}{
		{"same build", copyTo(built), "", false},
		// A given tlspin the trust check refuses runs nothing, sibling or
		// not (TestGivenTlspinIsChecked).
		{"same build, tlspin given", selfHere(copyTo(built)), "", true},
		{"none", func(*testing.T, string) {}, "no executable tlspin-builtins next to", false},
		{"another program of the same build", copyTo(self), `it is "github.com/tlspin/tlspin/cmd/tlspin", not github.com/tlspin/tlspin/cmd/tlspin-builtins`, false},
		{"not a Go binary", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "tlspin-builtins"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "build information of", false},
		// testbin builds without VCS information (-buildvcs=false), so the
		// files' times must vouch for the pair.
		{"left from an earlier build", func(t *testing.T, dir string) {
			copyTo(built)(t, dir)
			old := time.Now().Add(-2 * time.Hour)
			if err := os.Chtimes(filepath.Join(dir, "tlspin-builtins"), old, old); err != nil {
				t.Fatal(err)
			}
		}, "older than tlspin", false},
		{"not executable", func(t *testing.T, dir string) {
			copyTo(built)(t, dir)
			if err := os.Chmod(filepath.Join(dir, "tlspin-builtins"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "no executable tlspin-builtins", false},
		// Another user could swap it for one that allows every peer.
		{"writable by every user", func(t *testing.T, dir string) {
			copyTo(built)(t, dir)
			if err := os.Chmod(filepath.Join(dir, "tlspin-builtins"), 0o777); err != nil {
				t.Fatal(err)
			}
		}, "may be written by every user (mode 0777)", false},
		// Opening a FIFO to read its build information would wait for a
		// writer for good, hanging every command: the trust check refuses
		// it first, without opening it.
		{"a named pipe", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "tlspin-builtins"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "is not a regular file", false},
		// Refused by the trust check before its build information is read.
		{"writable by every user, not a Go binary", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "tlspin-builtins"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(dir, "tlspin-builtins"), 0o777); err != nil {
				t.Fatal(err)
			}
		}, "may be written by every user (mode 0777)", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.sibling(t, dir)
			c := &Config{Self: filepath.Join(dir, "tlspin"), SelfExec: self}
			reexec := self
			if tc.given {
				c.SelfExec, reexec = "", c.Self
			}
			resolved := make(chan struct{})
			go func() { defer close(resolved); c.ResolveSelf() }()
			select {
			case <-resolved:
			case <-time.After(10 * time.Second):
				t.Fatal("ResolveSelf did not return within 10s (it opened tlspin-builtins before checking it?)")
			}
			f := c.Finder()
			found, err := f.Find("spkipin")
			if err != nil {
				t.Fatal(err)
			}
			if tc.whyNot == "" {
				if c.Builtins != filepath.Join(dir, "tlspin-builtins") || !found.Direct || found.Path != c.Builtins {
					t.Fatalf("Builtins %q, found %+v (why not: %s); want the sibling, direct", c.Builtins, found, c.BuiltinsWhyNot)
				}
				return
			}
			if c.Builtins != "" || found.Direct || found.Path != reexec {
				t.Fatalf("Builtins %q, found %+v; want tlspin re-executed", c.Builtins, found)
			}
			if !strings.Contains(c.BuiltinsWhyNot, tc.whyNot) {
				t.Errorf("why not %q, want it to say %q", c.BuiltinsWhyNot, tc.whyNot)
			}
		})
	}
}

func TestIdentifiedAndFresh(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name     string
		bi       debug.BuildInfo
		ident    bool
		sibAge   time.Duration
		freshErr bool
	}{
		{"module version", debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, true, 0, false},
		{"clean commit", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}}, true, 0, false},
		{"uncommitted changes, same build", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}}, false, 2 * time.Second, false},
		{"no VCS, same build", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, false, -time.Second, false},
		{"no VCS, sibling an hour older", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, false, time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := identified(&tc.bi); got != tc.ident {
				t.Errorf("identified = %v, want %v", got, tc.ident)
			}
			if err := fresh(now, now.Add(-tc.sibAge)); (err != nil) != tc.freshErr {
				t.Errorf("fresh: %v, want error %v", err, tc.freshErr)
			}
		})
	}
}

func TestCompareBuilds(t *testing.T) {
	base := func() *debug.BuildInfo {
		return &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Path:      builtinsPackage,
			Main:      debug.Module{Path: "github.com/tlspin/tlspin", Version: "(devel)"},
			Deps:      []*debug.Module{{Path: "github.com/hashicorp/go-hclog", Version: "v1.6.3", Sum: "h1:a"}},
			Settings: []debug.BuildSetting{
				{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"},
				{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.time", Value: "2026-11-29T00:00:00Z"}, {Key: "vcs.modified", Value: "false"},
			},
		}
	}
	self := base()
	self.Path = "github.com/tlspin/tlspin/cmd/tlspin"
	self.Deps = append(self.Deps, &debug.Module{Path: "google.golang.org/grpc", Version: "v1.70.0"})
	tests := []struct {
		name   string
		change func(b *debug.BuildInfo)
		want   string
	}{
		{"same", func(*debug.BuildInfo) {}, ""},
		{"other revision", func(b *debug.BuildInfo) { b.Settings[2].Value = "def" }, `vcs.revision "def" against "abc"`},
		{"modified checkout", func(b *debug.BuildInfo) { b.Settings[4].Value = "true" }, "vcs.modified"},
		{"other toolchain", func(b *debug.BuildInfo) { b.GoVersion = "go1.25.0" }, "Go version"},
		{"other release", func(b *debug.BuildInfo) { b.Main.Version = "v0.1.0" }, "module version"},
		{"other dependency version", func(b *debug.BuildInfo) { b.Deps[0].Version = "v1.6.2" }, "dependency github.com/hashicorp/go-hclog"},
		{"replaced dependency", func(b *debug.BuildInfo) { b.Deps[0].Replace = &debug.Module{Path: "../hclog"} }, "dependency github.com/hashicorp/go-hclog"},
		{"dependency tlspin lacks", func(b *debug.BuildInfo) { b.Deps = append(b.Deps, &debug.Module{Path: "example.com/x", Version: "v1"}) }, "dependency example.com/x"},
		{"build tags", func(b *debug.BuildInfo) {
			b.Settings = append(b.Settings, debug.BuildSetting{Key: "-tags", Value: "old"})
		}, "-tags"},
		{"another command", func(b *debug.BuildInfo) { b.Path = "example.com/evil" }, "not github.com/tlspin/tlspin/cmd/tlspin-builtins"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			tc.change(b)
			err := compareBuilds(self, b)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("err = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

// The launch does not ask tlspin-builtins to describe a verifier: it
// knows the answer from its own build. Knowing it must change nothing:
// the binary, asked, says exactly that of every built-in.
func TestKnownBuiltinIsWhatTheBinarySays(t *testing.T) {
	self := testbin.Tlspin(t)
	built := filepath.Join(filepath.Dir(self), "tlspin-builtins")
	ctx := context.Background()
	for _, name := range BuiltinNames() {
		t.Run(name, func(t *testing.T) {
			known, err := knownBuiltin(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			asked, err := host.Describe(ctx, host.Spec{Name: name, Path: built, Args: []string{name}, Direct: true}, host.Config{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&known.Description, asked) {
				t.Errorf("known %+v\nbinary says %+v", known.Description, asked)
			}
		})
	}
	if _, err := knownBuiltin(ctx, "nosuch"); err == nil {
		t.Error("knownBuiltin of an unknown name: no error")
	}
}

// What the launch knows includes whether a verifier reports policy
// changes: the allowlist's reload still reaches the host, over the direct
// protocol, when it started without asking.
func TestKnownBuiltinStillReportsPolicyChanges(t *testing.T) {
	self := testbin.Tlspin(t)
	c := &Config{Self: self}
	c.ResolveSelf()
	if c.Builtins == "" {
		t.Fatalf("no tlspin-builtins next to %s: %s", self, c.BuiltinsWhyNot)
	}
	list := filepath.Join(t.TempDir(), "pins")
	pin := "sha256:" + strings.Repeat("ab", 32) + "\n"
	if err := os.WriteFile(list, []byte(pin), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := StartOne(context.Background(), c, Spec{Name: "allowlist", Options: verify.Options{"file": {list}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	changed := make(chan verify.PolicyChange, 1)
	p.OnPolicyChange(func(pc verify.PolicyChange) {
		if pc.Epoch == 0 {
			return // the host's own (the watch started), not the allowlist's
		}
		select {
		case changed <- pc:
		default:
		}
	})
	// The watch may start after this write: rewrite until a change arrives.
	for i := 0; ; i++ {
		if err := os.WriteFile(list, []byte(pin+"sha256:"+strings.Repeat("cd", 32)+"\n"+strings.Repeat("#\n", i)), 0o600); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
			return
		case <-time.After(time.Second):
			if i == 9 {
				t.Fatal("no policy change from the allowlist in 10 s of rewrites")
			}
		}
	}
}

// TestTlspinOnPathIsChecked: a program that does not serve built-in
// verifiers itself runs them through the tlspin binary it finds on $PATH,
// which then decides whom to trust as any plugin does: it is refused, saying
// why, on the same grounds (files.CheckExecutable), and nothing is read
// from it first.
func TestTlspinOnPathIsChecked(t *testing.T) {
	script := func(mode os.FileMode) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			writeScript(t, filepath.Join(dir, "tlspin"), mode)
		}
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		why   string // "" if it is chosen
	}{
		{"this user's", script(0o755), ""},
		{"writable by every user", script(0o777), "may be written by every user (mode 0777)"},
		{"in a directory every user may write", func(t *testing.T, dir string) {
			script(0o755)(t, dir)
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		}, "which every user may write to"},
		{"another user's", func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a file away")
			}
			script(0o755)(t, dir)
			if err := os.Chown(filepath.Join(dir, "tlspin"), 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "uid 65534"},
		// Opened, it would wait for a writer for good.
		{"a named pipe", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "tlspin"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "is not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			p := filepath.Join(dir, "tlspin")
			c := &Config{Getenv: func(k string) string {
				if k == "PATH" {
					return dir
				}
				return ""
			}}
			checkSelf(t, c, p, tc.why)
		})
	}
}

// TestGivenTlspinIsChecked: the tlspin binary a program names
// (tlspin.WithTlspinBinary) runs the built-in verifiers, which decide whom
// to trust, so it gets the plugin trust check as the one on $PATH does:
// one another user owns or may write, or a named pipe, is refused, saying
// why, before anything reads or runs it, and not replaced by another.
func TestGivenTlspinIsChecked(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, p string)
		why   string // "" if it runs the built-ins
	}{
		{"this user's", func(t *testing.T, p string) { writeScript(t, p, 0o755) }, ""},
		{"writable by every user", func(t *testing.T, p string) { writeScript(t, p, 0o777) }, "may be written by every user (mode 0777)"},
		{"in a directory every user may write", func(t *testing.T, p string) {
			writeScript(t, p, 0o755)
			if err := os.Chmod(filepath.Dir(p), 0o777); err != nil {
				t.Fatal(err)
			}
		}, "which every user may write to"},
		{"another user's", func(t *testing.T, p string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a file away")
			}
			writeScript(t, p, 0o755)
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "uid 65534"},
		{"a named pipe", func(t *testing.T, p string) {
			if err := syscall.Mkfifo(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "is not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "tlspin")
			tc.setup(t, p)
			// A tlspin on $PATH that would pass must not stand in for it.
			onPath := t.TempDir()
			writeScript(t, filepath.Join(onPath, "tlspin"), 0o755)
			c := &Config{Self: p, Getenv: func(k string) string {
				if k == "PATH" {
					return onPath
				}
				return ""
			}}
			checkSelf(t, c, p, tc.why)
		})
	}
}

// writeScript writes a shell script that fails at p, with mode.
func writeScript(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 1\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// checkSelf resolves c's tlspin binary and starts md5pin's check with it:
// if why is "", p must be the tlspin that runs the built-ins; else p must
// be refused, with an error naming it and saying why, and no other tlspin
// may stand in for it.
func checkSelf(t *testing.T, c *Config, p, why string) {
	t.Helper()
	resolved := make(chan struct{})
	go func() { defer close(resolved); c.ResolveSelf() }()
	select {
	case <-resolved:
	case <-time.After(10 * time.Second):
		t.Fatal("ResolveSelf did not return within 10s")
	}
	err := c.CheckPinned([]Spec{{Name: "md5pin"}})
	if why == "" {
		if c.Self != p || err != nil {
			t.Fatalf("Self %q (no self: %s), %v; want %q", c.Self, c.NoSelf, err, p)
		}
		return
	}
	if c.Self != "" {
		t.Fatalf("Self %q; want %s refused (%s)", c.Self, p, why)
	}
	if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), p) {
		t.Errorf("starting md5pin: %v; want an error naming %s and saying %q", err, p, why)
	}
}
