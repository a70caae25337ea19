package host

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/internal/files"
)

// ExecPrefix is the file-name prefix of an external verifier executable.
const ExecPrefix = "tlspin-verifier-"

var (
	// ErrUnknownVerifier is returned for a name that is neither built in nor found.
	ErrUnknownVerifier = errors.New("host: unknown verifier")
	// ErrHandshake is returned for an executable that ran but did not
	// complete the go-plugin handshake of a tlspin verifier.
	ErrHandshake = errors.New("host: verifier plugin handshake failed")
	// ErrProtocolVersion is returned for a plugin that speaks a verifier
	// protocol version this build does not.
	ErrProtocolVersion = errors.New("host: unsupported verifier protocol version")
	// ErrChecksum is returned for a plugin executable whose SHA-256 is not
	// the pinned one; it is never run.
	ErrChecksum = errors.New("host: verifier plugin checksum mismatch")
)

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
	Builtins []string
	Self     string
	SelfArgs func(name string) []string
	// SelfExec, if set, is what runs a built-in instead of Self: on Linux
	// /proc/self/exe, the very binary the host runs, even if the file at
	// Self has been replaced since.
	SelfExec string
	// BuiltinsExec, if set, runs built-ins instead of Self: the
	// tlspin-builtins binary (one argument, the name), which speaks the
	// direct protocol and starts several times faster.
	BuiltinsExec string
	PluginDirs   []string
	EnvPath      string
	// SysPath is searched last. It is taken, too, for the $PATH plugins
	// run with (Config.Env), which a script's "#!/usr/bin/env NAME" line
	// searches: the program found there is checked as the plugin is.
	SysPath string
}

// Found is a located verifier.
type Found struct {
	Name   string
	Path   string
	Args   []string
	Source Source
	// Shadowed lists executables named after a built-in that were ignored.
	Shadowed []string
	// Unusable, if set, says why the file found cannot run (List only; Find
	// returns it as an error).
	Unusable string
	// Direct says Path is tlspin-builtins (Spec.Direct).
	Direct bool
}

// Spec turns f into a launch spec.
func (f Found) Spec(opts map[string][]string) Spec {
	return Spec{Name: f.Name, Path: f.Path, Args: f.Args, Options: opts, Direct: f.Direct}
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
			if d == "" {
				continue
			}
			// Absolute, so that a found path always has a slash and exec
			// runs that very file ("." + a bare name would search $PATH),
			// and so that Found.Path says which file runs.
			abs, err := filepath.Abs(d)
			if err != nil {
				continue
			}
			out = append(out, struct {
				dir string
				src Source
			}{abs, src})
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
		if _, err := os.Stat(abs); errors.Is(err, os.ErrNotExist) {
			// A path that names nothing is a typo, as a name is.
			return Found{}, fmt.Errorf("%w %q: no such file (%s)", ErrUnknownVerifier, name, abs)
		}
		if why := f.unusable(abs); why != "" {
			return Found{}, fmt.Errorf("host: verifier %q: %s", abs, why)
		}
		return Found{Name: strings.TrimPrefix(filepath.Base(abs), ExecPrefix), Path: abs, Source: SourcePath}, nil
	}
	if found, ok := f.lookup(name); ok {
		if found.Unusable != "" {
			return Found{}, fmt.Errorf("host: verifier %q: %s", found.Path, found.Unusable)
		}
		return found, nil
	}
	known, _ := f.List()
	names := make([]string, 0, len(known))
	for _, k := range known {
		names = append(names, k.Name)
	}
	guess := ""
	if head, opts, ok := strings.Cut(name, ","); ok && slices.Contains(names, head) {
		// "md5pin,chain=any": options come after a colon.
		guess = fmt.Sprintf("did you mean %q? options follow the name after a colon; ", head+":"+opts)
	} else if g := closest(name, names); g != "" {
		guess = fmt.Sprintf("did you mean %q? ", g)
	}
	return Found{}, fmt.Errorf("%w %q (%sknown: %s; an external verifier is an executable named %s%s on the plugin search path)",
		ErrUnknownVerifier, name, guess, strings.Join(names, ", "), ExecPrefix, name)
}

// closest returns the name of names nearest to name, if it is a typo's
// distance away (at most two letters added, removed or changed; one for
// a short name), or "".
func closest(name string, names []string) string {
	best, bestD := "", min(2, len(name)/3)+1
	for _, n := range names {
		if d := editDistance(strings.ToLower(name), n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// lookup finds name, not a path, as Find and List both do, so that List
// shows exactly what Find runs: a built-in, with the executables named
// after it that it shadows; else the first tlspin-verifier-NAME on the
// search path that is not a directory (following links: one that leads
// nowhere, or to a directory, is passed over), with Unusable saying why
// it cannot run, if it cannot. ok is false when nothing is found.
func (f *Finder) lookup(name string) (found Found, ok bool) {
	if slices.Contains(f.Builtins, name) {
		b := f.builtin(name)
		for _, d := range f.dirs() {
			// A plugin named after a built-in never runs: the caller
			// says so, or its author sees only the built-in's answers.
			p := filepath.Join(d.dir, ExecPrefix+name)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				b.Shadowed = append(b.Shadowed, p)
			}
		}
		return b, true
	}
	for _, d := range f.dirs() {
		p := filepath.Join(d.dir, ExecPrefix+name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return Found{Name: name, Path: p, Source: d.src, Unusable: f.unusable(p)}, true
		}
	}
	return Found{}, false
}

func (f *Finder) builtin(name string) Found {
	if f.BuiltinsExec != "" {
		return Found{Name: name, Path: f.BuiltinsExec, Args: []string{name}, Source: SourceBuiltin, Direct: true}
	}
	var args []string
	if f.SelfArgs != nil {
		args = f.SelfArgs(name)
	}
	path := f.Self
	if f.SelfExec != "" {
		path = f.SelfExec
	}
	return Found{Name: name, Path: path, Args: args, Source: SourceBuiltin}
}

// List returns every built-in verifier and every external one on the search
// path; built-ins first, then external ones by name. Each name is shown as
// Find finds it (lookup): the file Find runs, from the same place, with
// the same ignored shadows; a file Find refuses (not executable, another
// user's) is listed with the reason in Unusable. The names are those in
// the directories that can be read: a directory that can be searched but
// not listed may hold a plugin that Find runs and List cannot name, but
// never one that Find would run in place of what List shows.
func (f *Finder) List() ([]Found, error) {
	out := make([]Found, 0, len(f.Builtins))
	for _, b := range f.Builtins {
		found, _ := f.lookup(b)
		out = append(out, found)
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
			if !ok || n == "" || seen[n] || slices.Contains(f.Builtins, n) {
				continue
			}
			seen[n] = true
			if found, ok := f.lookup(n); ok {
				ext = append(ext, found)
			}
		}
	}
	sort.Slice(ext, func(i, j int) bool { return ext[i].Name < ext[j].Name })
	return append(out, ext...), nil
}

// unusable says why the file at p cannot run as a plugin, or "". A
// plugin decides whom to trust, so one that another user may have written,
// or may swap (through a directory or a link of theirs), is refused as a
// trust file is (files.CheckExecutable, with SysPath as its $PATH).
func (f *Finder) unusable(p string) string {
	st, err := os.Stat(p)
	switch {
	case err != nil:
		return err.Error()
	case st.IsDir():
		return "is a directory"
	case st.Mode()&0o111 == 0:
		return "is not executable (chmod +x it)"
	}
	if err := files.CheckExecutable(p, f.SysPath); err != nil {
		return "refused: " + err.Error()
	}
	return ""
}

// pluginVersionRE finds the plugin's version in go-plugin's message.
var pluginVersionRE = regexp.MustCompile(`Plugin version: (\d+)`)

// explainStart turns an error of go-plugin's launch of spec, bounded by
// timeout, into one that says what is wrong and what to do, or returns nil
// for an error it does not recognise. go-plugin has no sentinel errors for most of these, so
// this matches its messages; TestBadPluginsFailClearly notices a change.
func explainStart(spec Spec, timeout time.Duration, err error) error {
	msg := err.Error()
	name, path := spec.Name, spec.Path
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("host: verifier %q: cannot run %q: %w (is it executable? chmod +x it)", name, path, err)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("host: verifier %q: cannot run %q: %w (for a script: is the interpreter on its #! line installed?)", name, path, err)
	case strings.Contains(msg, "incompatible API version with plugin"):
		theirs := "another"
		if m := pluginVersionRE.FindStringSubmatch(msg); m != nil {
			theirs = m[1]
		}
		ours := versionList(rpc.SupportedVersions())
		return fmt.Errorf("%w: verifier %q (%s) speaks verifier protocol version %s, this tlspin speaks version %s: rebuild the plugin with an SDK for version %s, or use a tlspin that supports version %s",
			ErrProtocolVersion, name, path, theirs, ours, ours, theirs)
	case strings.Contains(msg, "Unrecognized remote plugin message: "):
		_, stray, _ := strings.Cut(msg, "Unrecognized remote plugin message: ")
		stray, _, _ = strings.Cut(stray, "\n")
		if stray == "" {
			return fmt.Errorf("%w: verifier %q: %q exited without a handshake: is it a tlspin verifier plugin? (--log-level debug shows its output)", ErrHandshake, name, path)
		}
		return fmt.Errorf("%w: verifier %q: %q wrote %q to stdout before the handshake: stdout is reserved for the go-plugin handshake, a plugin must log to stderr",
			ErrHandshake, name, path, stray)
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return fmt.Errorf("%w: verifier %q: %q did not complete the go-plugin handshake within the start timeout (%s): is it a tlspin verifier plugin?",
			ErrHandshake, name, path, timeout)
	case strings.Contains(msg, "plugin exited before we could connect"):
		return fmt.Errorf("%w: verifier %q: %q exited before the handshake: is it a tlspin verifier plugin? (--log-level debug shows its output)", ErrHandshake, name, path)
	case strings.Contains(msg, "unsupported plugin protocol"):
		return fmt.Errorf("%w: verifier %q: %q speaks go-plugin's net/rpc; tlspin verifiers speak gRPC", ErrHandshake, name, path)
	case strings.Contains(msg, "incompatible core API version"):
		return fmt.Errorf("%w: verifier %q: %q speaks another go-plugin core protocol (this tlspin speaks %d): %w", ErrHandshake, name, path, plugin.CoreProtocolVersion, err)
	}
	return nil
}

// versionList formats protocol versions as "1" or "1, 2".
func versionList(vs []int) string {
	var b bytes.Buffer
	for i, v := range vs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(v))
	}
	return b.String()
}
