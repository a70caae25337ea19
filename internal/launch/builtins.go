package launch

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/tlspin/tlspin/core/peercred"
	"github.com/tlspin/tlspin/internal/builtinplugin"
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
	if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		c.BuiltinsWhyNot = fmt.Sprintf("no executable %s next to %s", builtinplugin.Name, c.Self)
		return
	}
	self := c.Self
	if c.SelfExec != "" {
		self = c.SelfExec
	}
	if err := sameBuild(self, p); err != nil {
		c.BuiltinsWhyNot = err.Error()
		return
	}
	c.Builtins = p
}

// sameBuild reports whether the Go binaries at a and b were built from the
// same source: the same toolchain, main module version, VCS state, build
// tags and platform, and every dependency of b at the version a has.
// Builds from a modified checkout compare equal when all that does.
func sameBuild(a, b string) error {
	ia, err := buildinfo.ReadFile(a)
	if err != nil {
		return fmt.Errorf("launch: build information of %q: %w", a, err)
	}
	ib, err := buildinfo.ReadFile(b)
	if err != nil {
		return fmt.Errorf("launch: build information of %q: %w", b, err)
	}
	differ := func(what, x, y string) error {
		return fmt.Errorf("launch: %s is not from the same build as %s: %s %q against %q", b, a, what, y, x)
	}
	switch {
	case ia.GoVersion != ib.GoVersion:
		return differ("Go version", ia.GoVersion, ib.GoVersion)
	case ia.Main.Path != ib.Main.Path:
		return differ("module", ia.Main.Path, ib.Main.Path)
	case ia.Main.Version != ib.Main.Version || ia.Main.Sum != ib.Main.Sum:
		return differ("module version", ia.Main.Version+" "+ia.Main.Sum, ib.Main.Version+" "+ib.Main.Sum)
	}
	sa, sb := settings(ia), settings(ib)
	for _, k := range []string{"vcs.revision", "vcs.time", "vcs.modified", "-tags", "GOOS", "GOARCH", "CGO_ENABLED"} {
		if sa[k] != sb[k] {
			return differ(k, sa[k], sb[k])
		}
	}
	deps := map[string]string{}
	for _, d := range ia.Deps {
		deps[d.Path] = modString(d)
	}
	for _, d := range ib.Deps {
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
