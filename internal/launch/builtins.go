package launch

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/peercred"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/builtinplugin"
	"github.com/tlspin/tlspin/internal/files"
	"github.com/tlspin/tlspin/verifiers"
	"github.com/tlspin/tlspin/verifiers/builtin"
)

// resolveBuiltins chooses tlspin-builtins to run built-in verifiers when
// it sits next to Self and comes from the same build; BuiltinsWhyNot says
// why not otherwise, and Self is re-executed as before.
//
// The same build matters: tlspin-builtins is the verifiers' code, and a
// stale copy left next to an upgraded tlspin would decide with old rules
// (say, before a fix to chain checking). Re-executing Self cannot be
// stale; the sibling is used only when its build information says it was
// built from the same source as the binary that runs Self.
func (c *Config) resolveBuiltins() {
	c.Builtins, c.BuiltinsWhyNot = "", ""
	if c.Self == "" {
		return
	}
	if !peercred.Supported {
		c.BuiltinsWhyNot = "the direct protocol needs unix socket peer credentials, which this system lacks"
		return
	}
	p := filepath.Join(filepath.Dir(c.Self), builtinplugin.Name)
	// It decides whom to trust, as any plugin: not one another user may
	// have written or may swap. That comes first, and checks the file by
	// its metadata alone: reading its build information opens it, which
	// for a named pipe would wait for a writer for good, and what another
	// user may have written is not to be parsed either. Self re-executed
	// is as safe as Self.
	if err := files.CheckExecutable(p, c.getenv("PATH")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			c.BuiltinsWhyNot = fmt.Sprintf("no executable %s next to %s", builtinplugin.Name, c.Self)
		} else {
			c.BuiltinsWhyNot = fmt.Sprintf("launch: %s: %v", builtinplugin.Name, err)
		}
		return
	}
	// CheckExecutable refused anything but a regular file.
	if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
		c.BuiltinsWhyNot = fmt.Sprintf("no executable %s next to %s", builtinplugin.Name, c.Self)
		return
	}
	self := c.Self
	if c.SelfExec != "" {
		self = c.SelfExec
	}
	// Its build information is read too (but this very program's, from
	// memory): not before the same check, which a named pipe fails
	// without being opened.
	if self != "/proc/self/exe" {
		if err := files.CheckExecutable(self, c.getenv("PATH")); err != nil {
			c.BuiltinsWhyNot = fmt.Sprintf("launch: %s: %v", self, err)
			return
		}
	}
	if err := sameBuild(self, p); err != nil {
		c.BuiltinsWhyNot = err.Error()
		return
	}
	c.Builtins = p
}

// sameBuild reports whether b is the tlspin-builtins command built from
// the same source as the Go binary at a (read from the files).
func sameBuild(a, b string) error {
	ia, err := buildInfoOf(a)
	if err != nil {
		return fmt.Errorf("launch: build information of %q: %w", a, err)
	}
	ib, err := buildinfo.ReadFile(b)
	if err != nil {
		return fmt.Errorf("launch: build information of %q: %w", b, err)
	}
	if err := compareBuilds(ia, ib); err != nil {
		return fmt.Errorf("launch: %s is not from the same build as %s: %w", b, a, err)
	}
	if identified(ia) {
		return nil
	}
	sa, err := os.Stat(a)
	if err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	sb, err := os.Stat(b)
	if err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	return fresh(sa.ModTime(), sb.ModTime())
}

// identified reports whether build information names the source exactly:
// a module version, or a VCS revision without uncommitted changes. A
// build from a working tree without either (go build with -buildvcs=false,
// or with changes not committed) compares equal to any other such build
// of the same dependencies, so its tlspin-builtins must also be fresh.
func identified(bi *debug.BuildInfo) bool {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return true
	}
	s := settings(bi)
	return s["vcs.revision"] != "" && s["vcs.modified"] != "true"
}

// freshWindow is how much older than tlspin a tlspin-builtins of an
// unidentified build may be: both come out of one go build or go install,
// a few seconds apart.
const freshWindow = time.Minute

// fresh refuses a tlspin-builtins (modified at sib) older than the tlspin
// binary (modified at self) by more than freshWindow: it is left from an
// earlier build, maybe of other verifier code.
func fresh(self, sib time.Time) error {
	if d := self.Sub(sib); d > freshWindow {
		return fmt.Errorf("launch: tlspin-builtins is %s older than tlspin, and their build information cannot tell whether they come from the same source (no module version or commit, or uncommitted changes): it may be left from an earlier build; rebuild both (go build -o DIR/ ./cmd/tlspin ./cmd/tlspin-builtins)", d.Round(time.Second))
	}
	return nil
}

// buildInfoOf reads the build information of the Go binary at path; of
// this very program from memory, which is faster than reading its file.
func buildInfoOf(path string) (*debug.BuildInfo, error) {
	if path == "/proc/self/exe" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			return bi, nil
		}
	}
	return buildinfo.ReadFile(path)
}

// builtinsPackage is the main package of tlspin-builtins.
const builtinsPackage = "github.com/tlspin/tlspin/cmd/tlspin-builtins"

// compareBuilds says how b differs from a build of tlspin-builtins from the
// same source as a: the same toolchain, main module version, VCS state,
// build tags and platform, and every dependency of b at the version a
// has. Builds from a modified checkout compare equal when all that does.
func compareBuilds(a, b *debug.BuildInfo) error {
	differ := func(what, x, y string) error {
		return fmt.Errorf("%s %q against %q", what, y, x)
	}
	switch {
	case b.Path != builtinsPackage:
		return fmt.Errorf("it is %q, not %s", b.Path, builtinsPackage)
	case a.GoVersion != b.GoVersion:
		return differ("Go version", a.GoVersion, b.GoVersion)
	case a.Main.Path != b.Main.Path:
		return differ("module", a.Main.Path, b.Main.Path)
	case a.Main.Version != b.Main.Version || a.Main.Sum != b.Main.Sum:
		return differ("module version", a.Main.Version+" "+a.Main.Sum, b.Main.Version+" "+b.Main.Sum)
	}
	sa, sb := settings(a), settings(b)
	for _, k := range []string{"vcs.revision", "vcs.time", "vcs.modified", "-tags", "GOOS", "GOARCH", "CGO_ENABLED"} {
		if sa[k] != sb[k] {
			return differ(k, sa[k], sb[k])
		}
	}
	deps := map[string]string{}
	for _, d := range a.Deps {
		deps[d.Path] = modString(d)
	}
	for _, d := range b.Deps {
		if v := deps[d.Path]; v != modString(d) {
			return differ("dependency "+d.Path, v, modString(d))
		}
	}
	return nil
}

func settings(bi *debug.BuildInfo) map[string]string {
	m := map[string]string{}
	for _, s := range bi.Settings {
		m[s.Key] = s.Value
	}
	return m
}

func modString(m *debug.Module) string {
	s := m.Version + " " + m.Sum
	if m.Replace != nil {
		s += " => " + modString(m.Replace)
	}
	return s
}

// knownBuiltin is what tlspin-builtins would describe built-in verifier
// name as: it runs only when it comes from this program's build
// (resolveBuiltins), whose built-ins are these.
func knownBuiltin(ctx context.Context, name string) (*host.Known, error) {
	_, k, err := builtinOf(ctx, name)
	return k, err
}

// builtinOf returns this build's built-in verifier name, unconfigured, and
// what it describes itself as.
func builtinOf(ctx context.Context, name string) (verify.Verifier, *host.Known, error) {
	v, err := builtin.New(nil).Lookup(name)
	if err != nil {
		return nil, nil, fmt.Errorf("launch: %w", err)
	}
	d, err := v.Describe(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("launch: verifier %q: %w", name, err)
	}
	_, notifies := v.(verify.PolicyNotifier)
	return v, &host.Known{Description: *d, Notifies: notifies}, nil
}

// CheckBuiltinOptions checks each spec that names a built-in verifier
// against what the built-in declares (unknown, missing or repeated
// options) and, where the built-in can tell without side effects
// (verify.ValueChecker: the pins of md5pin, sha256pin and spkipin, the
// files of allowlist and ca, and what is in them when they are small), the
// values, without starting it: a command refuses a typo before it connects
// anywhere. What is in a larger file, and tofu's store, are checked by the
// verifier itself when it starts.
//
// unchecked names the specs that are not built-ins: only their plugin,
// once launched, knows their options, so a caller that must not reach a
// server with a bad option waits for their Configure.
func CheckBuiltinOptions(ctx context.Context, specs []Spec) (unchecked []string, err error) {
	for _, s := range specs {
		v, k, err := builtinOf(ctx, s.Name)
		if errors.Is(err, verifiers.ErrUnknown) {
			unchecked = append(unchecked, s.Name) // only its plugin knows its options
			continue
		}
		if err != nil {
			return nil, err
		}
		err = verify.CheckOptions(&k.Description, s.Options)
		if vc, ok := v.(verify.ValueChecker); ok && err == nil {
			err = vc.CheckValues(s.Options)
		}
		if err != nil {
			return nil, AsConfig(fmt.Errorf("launch: verifier %q: %w", s.Name, err))
		}
	}
	return unchecked, nil
}
