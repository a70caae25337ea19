package host

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// ExecPrefix is the file-name prefix of an external verifier executable.
const ExecPrefix = "tlspin-verifier-"

// ErrUnknownVerifier is returned for a name that is neither built in nor found.
var ErrUnknownVerifier = errors.New("host: unknown verifier")

// Source says where a verifier was found.
type Source string

const (
	SourceBuiltin   Source = "built-in"
	SourcePath      Source = "given path"
	SourcePluginDir Source = "--plugin-dir"
	SourceEnv       Source = "$TLSPIN_PLUGIN_PATH"
	SourceSelfDir   Source = "next to tlspin"
	SourceSysPath   Source = "$PATH"
)

// Finder finds verifiers by name. Built-in names are served by re-executing
// Self; other names are executables called ExecPrefix+NAME, searched in
// PluginDirs, then EnvPath ($TLSPIN_PLUGIN_PATH), then the directory of
// Self, then SysPath ($PATH). A name containing a slash is a path. A found
// executable can never shadow a built-in name.
type Finder struct {
	Builtins   []string
	Self       string
	SelfArgs   func(name string) []string
	PluginDirs []string
	EnvPath    string
	SysPath    string
}

// Found is a located verifier.
type Found struct {
	Name   string
	Path   string
	Args   []string
	Source Source
	// Shadowed lists executables named after a built-in that were ignored.
	Shadowed []string
}

// Spec turns f into a launch spec.
func (f Found) Spec(opts map[string][]string) Spec {
	return Spec{Name: f.Name, Path: f.Path, Args: f.Args, Options: opts}
}

func (f *Finder) dirs() []struct {
	dir string
	src Source
} {
	var out []struct {
		dir string
		src Source
	}
	add := func(list []string, src Source) {
		for _, d := range list {
			if d != "" {
				out = append(out, struct {
					dir string
					src Source
				}{d, src})
			}
		}
	}
	add(f.PluginDirs, SourcePluginDir)
	add(filepath.SplitList(f.EnvPath), SourceEnv)
	if f.Self != "" {
		add([]string{filepath.Dir(f.Self)}, SourceSelfDir)
	}
	add(filepath.SplitList(f.SysPath), SourceSysPath)
	return out
}

// Find locates the verifier called name.
func (f *Finder) Find(name string) (Found, error) {
	if name == "" {
		return Found{}, fmt.Errorf("%w: empty name", ErrUnknownVerifier)
	}
	if strings.ContainsRune(name, os.PathSeparator) {
		abs, err := filepath.Abs(name)
		if err != nil {
			return Found{}, fmt.Errorf("host: verifier path %q: %w", name, err)
		}
		if err := checkExecutable(abs); err != nil {
			return Found{}, err
		}
		return Found{Name: strings.TrimPrefix(filepath.Base(abs), ExecPrefix), Path: abs, Source: SourcePath}, nil
	}
	if slices.Contains(f.Builtins, name) {
		return f.builtin(name), nil
	}
	for _, d := range f.dirs() {
		p := filepath.Join(d.dir, ExecPrefix+name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			if err := checkExecutable(p); err != nil {
				return Found{}, err
			}
			return Found{Name: name, Path: p, Source: d.src}, nil
		}
	}
	known, _ := f.List()
	names := make([]string, 0, len(known))
	for _, k := range known {
		names = append(names, k.Name)
	}
	return Found{}, fmt.Errorf("%w %q (known: %s; an external verifier is an executable named %s%s on the plugin search path)",
		ErrUnknownVerifier, name, strings.Join(names, ", "), ExecPrefix, name)
}

func (f *Finder) builtin(name string) Found {
	var args []string
	if f.SelfArgs != nil {
		args = f.SelfArgs(name)
	}
	return Found{Name: name, Path: f.Self, Args: args, Source: SourceBuiltin}
}

// List returns every built-in verifier and every external one on the search
// path, first found wins; built-ins first, then external ones by name.
func (f *Finder) List() ([]Found, error) {
	out := make([]Found, 0, len(f.Builtins))
	idx := map[string]int{}
	for _, b := range f.Builtins {
		idx[b] = len(out)
		out = append(out, f.builtin(b))
	}
	var ext []Found
	seen := map[string]bool{}
	for _, d := range f.dirs() {
		entries, err := os.ReadDir(d.dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			n, ok := strings.CutPrefix(e.Name(), ExecPrefix)
			if !ok || n == "" || e.IsDir() {
				continue
			}
			p := filepath.Join(d.dir, e.Name())
			if i, isBuiltin := idx[n]; isBuiltin {
				out[i].Shadowed = append(out[i].Shadowed, p)
				continue
			}
			if seen[n] {
				continue
			}
			seen[n] = true
			ext = append(ext, Found{Name: n, Path: p, Source: d.src})
		}
	}
	sort.Slice(ext, func(i, j int) bool { return ext[i].Name < ext[j].Name })
	return append(out, ext...), nil
}

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("host: verifier %q: %w", p, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("host: verifier %q is not executable (chmod +x it)", p)
	}
	return nil
}
