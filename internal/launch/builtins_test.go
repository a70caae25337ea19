package launch

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

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
	tests := []struct {
		name    string
		sibling func(t *testing.T, dir string)
		whyNot  string
	}{
		{"same build", copyTo(built), ""},
		{"none", func(*testing.T, string) {}, "no executable tlspin-builtins next to"},
		{"another program of the same build", copyTo(self), `it is "github.com/tlspin/tlspin/cmd/tlspin", not github.com/tlspin/tlspin/cmd/tlspin-builtins`},
		{"not a Go binary", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "tlspin-builtins"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "build information of"},
		// testbin builds without VCS information (-buildvcs=false), so the
		// files' times must vouch for the pair.
		{"left from an earlier build", func(t *testing.T, dir string) {
			copyTo(built)(t, dir)
			old := time.Now().Add(-2 * time.Hour)
			if err := os.Chtimes(filepath.Join(dir, "tlspin-builtins"), old, old); err != nil {
				t.Fatal(err)
			}
		}, "older than tlspin"},
		{"not executable", func(t *testing.T, dir string) {
			copyTo(built)(t, dir)
			if err := os.Chmod(filepath.Join(dir, "tlspin-builtins"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "no executable tlspin-builtins"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.sibling(t, dir)
			c := &Config{Self: filepath.Join(dir, "tlspin"), SelfExec: self}
			c.ResolveSelf()
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
			if c.Builtins != "" || found.Direct || found.Path != self {
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
