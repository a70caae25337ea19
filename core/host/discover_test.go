package host_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/testbin"
)

// The custom verifier of these tests is examples/go-verifier
// (tlspin-verifier-sanexpiry): a real out-of-tree plugin built with the SDK.
const customName = "sanexpiry"

func customBinary(t *testing.T) string {
	t.Helper()
	return testbin.Build(t, "./examples/go-verifier", host.ExecPrefix+customName)
}

func probeBinary(t *testing.T) string {
	t.Helper()
	return testbin.Build(t, "./core/host/testdata/probe", "probe")
}

// probeSummary starts probe in mode and returns its Describe summary.
func probeSummary(t *testing.T, mode string, cfg host.Config) string {
	t.Helper()
	p, err := host.Start(context.Background(), host.Spec{Name: "probe", Path: probeBinary(t), Args: []string{mode}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d, err := p.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d.Summary
}

// install puts a copy of the executable src into dir as name and returns
// its path.
func install(t *testing.T, src, dir, name string) string {
	t.Helper()
	dst := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// writeScript writes an executable shell script.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func discLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn})
}

func discConfig(t *testing.T) host.Config {
	return host.Config{Logger: discLogger(t), Env: host.PluginEnv(os.Getenv), StartTimeout: 10 * time.Second}
}

func leafFor(t *testing.T, dns string, days int) []byte {
	t.Helper()
	_, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, SANs: []string{dns}, Days: days})
	if err != nil {
		t.Fatal(err)
	}
	return c.Raw
}

// checkSANExpiry starts found with san=*.example.com and checks that it
// allows a matching short-lived leaf and rejects another.
func checkSANExpiry(t *testing.T, found host.Found) {
	t.Helper()
	p, err := host.Start(context.Background(), found.Spec(verify.Options{"san": {"*.example.com"}}), discConfig(t))
	if err != nil {
		t.Fatalf("start %s from %s: %v", found.Path, found.Source, err)
	}
	defer p.Close()
	for _, tc := range []struct {
		dns   string
		allow bool
	}{{"api.example.com", true}, {"api.example.org", false}} {
		v, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{leafFor(t, tc.dns, 30)}, Side: verify.ClientVerifiesServer})
		if err != nil {
			t.Fatalf("verify %s: %v", tc.dns, err)
		}
		if v.Allow != tc.allow {
			t.Errorf("%s: allow = %v, want %v (%s)", tc.dns, v.Allow, tc.allow, v.Reason)
		}
	}
}

func TestCustomVerifierFoundFromEachLocation(t *testing.T) {
	bin := customBinary(t)
	file := host.ExecPrefix + customName
	tests := []struct {
		name   string
		finder func(dir string) *host.Finder
		find   func(dir string) string
		source host.Source
	}{
		{"--plugin-dir", func(d string) *host.Finder { return &host.Finder{PluginDirs: []string{d}} }, nil, host.SourcePluginDir},
		{"$TLSPIN_PLUGIN_PATH", func(d string) *host.Finder {
			return &host.Finder{EnvPath: strings.Join([]string{"/nonexistent", d}, string(os.PathListSeparator))}
		}, nil, host.SourceEnv},
		{"next to tlspin", func(d string) *host.Finder { return &host.Finder{Self: filepath.Join(d, "tlspin")} }, nil, host.SourceSelfDir},
		{"$PATH", func(d string) *host.Finder {
			return &host.Finder{SysPath: "/nonexistent" + string(os.PathListSeparator) + d}
		}, nil, host.SourceSysPath},
		{"explicit path", func(string) *host.Finder { return &host.Finder{} }, func(d string) string { return filepath.Join(d, file) }, host.SourcePath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			want := install(t, bin, dir, file)
			name := customName
			if tc.find != nil {
				name = tc.find(dir)
			}
			found, err := tc.finder(dir).Find(name)
			if err != nil {
				t.Fatal(err)
			}
			if found.Source != tc.source || found.Path != want || found.Name != customName {
				t.Fatalf("found %+v; want %s at %s from %s", found, customName, want, tc.source)
			}
			checkSANExpiry(t, found)
		})
	}
}

// TestRelativeDirectory: a relative search directory (--plugin-dir .)
// finds the file by its absolute path, and that file runs: joined with ".",
// the name alone would be looked up in $PATH instead.
func TestRelativeDirectory(t *testing.T) {
	bin := customBinary(t)
	dir := t.TempDir()
	want := install(t, bin, dir, host.ExecPrefix+customName)
	t.Chdir(dir)
	for _, f := range []*host.Finder{{PluginDirs: []string{"."}}, {EnvPath: "."}, {SysPath: "."}} {
		found, err := f.Find(customName)
		if err != nil {
			t.Fatal(err)
		}
		if found.Path != want {
			t.Fatalf("found %s at %q; want %q", found.Source, found.Path, want)
		}
		checkSANExpiry(t, found)
	}
}

func TestSearchOrder(t *testing.T) {
	bin := customBinary(t)
	root := t.TempDir()
	dirs := map[host.Source]string{}
	for _, s := range []host.Source{host.SourcePluginDir, host.SourceEnv, host.SourceSelfDir, host.SourceSysPath} {
		dirs[s] = filepath.Join(root, strings.Trim(string(s), "$-"))
		install(t, bin, dirs[s], host.ExecPrefix+customName)
	}
	f := &host.Finder{
		PluginDirs: []string{dirs[host.SourcePluginDir]},
		EnvPath:    dirs[host.SourceEnv],
		Self:       filepath.Join(dirs[host.SourceSelfDir], "tlspin"),
		SysPath:    dirs[host.SourceSysPath],
	}
	// Each step removes the location that won the previous one.
	for _, want := range []host.Source{host.SourcePluginDir, host.SourceEnv, host.SourceSelfDir, host.SourceSysPath} {
		found, err := f.Find(customName)
		if err != nil {
			t.Fatal(err)
		}
		if found.Source != want || filepath.Dir(found.Path) != dirs[want] {
			t.Fatalf("found %s at %s; want it from %s", found.Source, found.Path, want)
		}
		if err := os.Remove(found.Path); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Find(customName); !errors.Is(err, host.ErrUnknownVerifier) || !strings.Contains(err.Error(), host.ExecPrefix+customName) {
		t.Fatalf("with every copy gone: %v; want ErrUnknownVerifier naming the executable to install", err)
	}
}

func TestBuiltinIsNeverShadowed(t *testing.T) {
	self := testbin.Tlspin(t)
	impostor := customBinary(t)
	root := t.TempDir()
	selfDir := filepath.Join(root, "bin")
	selfCopy := install(t, self, selfDir, "tlspin")
	var planted []string
	for _, d := range []string{"plugin-dir", "env", "bin", "path"} {
		planted = append(planted, install(t, impostor, filepath.Join(root, d), host.ExecPrefix+"md5pin"))
	}
	f := &host.Finder{
		Builtins:   []string{"md5pin"},
		Self:       selfCopy,
		SelfArgs:   func(n string) []string { return []string{"__verifier", n} },
		PluginDirs: []string{filepath.Join(root, "plugin-dir")},
		EnvPath:    filepath.Join(root, "env"),
		SysPath:    filepath.Join(root, "path"),
	}
	found, err := f.Find("md5pin")
	if err != nil {
		t.Fatal(err)
	}
	if found.Source != host.SourceBuiltin || found.Path != selfCopy {
		t.Fatalf("md5pin found as %+v; want the built-in in %s", found, selfCopy)
	}
	// Find says what it ignored, so that the caller can tell the author.
	if !slices.Equal(found.Shadowed, planted) {
		t.Errorf("Find's Shadowed = %q; want every planted impostor %q, in search order", found.Shadowed, planted)
	}
	list, err := f.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "md5pin" || list[0].Source != host.SourceBuiltin {
		t.Fatalf("List = %+v; want only the built-in md5pin", list)
	}
	if !slices.Equal(list[0].Shadowed, planted) {
		t.Errorf("Shadowed = %q; want every planted impostor %q, in search order", list[0].Shadowed, planted)
	}
	// What runs is really md5pin: it takes a pin, which sanexpiry does not.
	leaf := leafFor(t, "a.example", 30)
	sum := md5.Sum(leaf)
	p, err := host.Start(context.Background(), found.Spec(verify.Options{"pin": {hex.EncodeToString(sum[:])}}), discConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if v, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{leaf}}); err != nil || !v.Allow {
		t.Fatalf("built-in md5pin: %+v, %v; want allow", v, err)
	}
}

func TestBadPluginsFailClearly(t *testing.T) {
	probe := probeBinary(t)
	dir := t.TempDir()
	notExec := filepath.Join(dir, host.ExecPrefix+"noexec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// go-plugin makes each plugin's socket directory in $TMPDIR: a failed
	// start must leave none behind.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	const startTimeout = 1500 * time.Millisecond
	tests := []struct {
		name string
		spec host.Spec
		is   error
		want []string
	}{
		{"not executable", host.Spec{Path: notExec}, os.ErrPermission, []string{"cannot run", notExec}},
		{"missing", host.Spec{Path: filepath.Join(dir, "nothing-here")}, os.ErrNotExist, []string{"nothing-here"}},
		{"not a go-plugin (exits)", host.Spec{Path: writeScript(t, dir, "exits", `echo "usage: exits FILE" >&2; exit 2`)},
			host.ErrHandshake, []string{"exit", "is it a tlspin verifier plugin?", `last words on stderr: "usage: exits FILE"`}},
		{"not a go-plugin (exits, no newline)", host.Spec{Path: writeScript(t, dir, "exits-nonl", `printf "usage: exits FILE" >&2; exit 2`)},
			host.ErrHandshake, []string{"exit", `last words on stderr: "usage: exits FILE"`}},
		{"not a go-plugin (exits silently)", host.Spec{Path: writeScript(t, dir, "true", `exit 0`)},
			host.ErrHandshake, []string{"exit", "is it a tlspin verifier plugin?"}},
		{"prints to stdout before the handshake", host.Spec{Path: probe, Args: []string{"stdout"}},
			host.ErrHandshake, []string{`"hello from a chatty plugin"`, "stdout", "log to stderr"}},
		{"script prints to stdout", host.Spec{Path: writeScript(t, dir, "chatty", `echo "starting up"; exec sleep 30`)},
			host.ErrHandshake, []string{`"starting up"`, "stdout"}},
		{"never handshakes", host.Spec{Path: writeScript(t, dir, "sleeps", `exec sleep 30`)},
			host.ErrHandshake, []string{"did not complete the go-plugin handshake within the start timeout (1.5s)"}},
		{"wrong protocol version", host.Spec{Path: probe, Args: []string{"v2"}},
			host.ErrProtocolVersion, []string{"protocol version 2", "speaks version 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Name = "bad"
			cfg := discConfig(t)
			cfg.StartTimeout = startTimeout
			start := time.Now()
			p, err := host.Start(context.Background(), tc.spec, cfg)
			took := time.Since(start)
			if err == nil {
				p.Close()
				t.Fatal("bad plugin started")
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, tc.is) {
				t.Errorf("error does not wrap %v", tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q", w)
				}
			}
			if !strings.Contains(err.Error(), `"bad"`) {
				t.Errorf("error does not name the verifier")
			}
			if took > startTimeout+2*time.Second {
				t.Errorf("took %s; want an error within the start timeout %s", took, startTimeout)
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("left in $TMPDIR: %v", left)
			}
		})
	}
	t.Run("not executable, found by name", func(t *testing.T) {
		_, err := (&host.Finder{PluginDirs: []string{dir}}).Find("noexec")
		if err == nil || !strings.Contains(err.Error(), "not executable") || !strings.Contains(err.Error(), notExec) {
			t.Fatalf("Find: %v; want a not-executable error naming %s", err, notExec)
		}
	})
}

func TestChecksumPin(t *testing.T) {
	dir := t.TempDir()
	bin := install(t, customBinary(t), dir, host.ExecPrefix+customName)
	sum, err := host.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	wrong := slices.Clone(sum)
	wrong[0] ^= 0xff
	found, err := (&host.Finder{PluginDirs: []string{dir}}).Find(customName)
	if err != nil {
		t.Fatal(err)
	}
	opts := verify.Options{"san": {"*"}}
	t.Run("pinned sum runs", func(t *testing.T) {
		spec := found.Spec(opts)
		spec.SHA256 = sum
		p, err := host.Start(context.Background(), spec, discConfig(t))
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
	})
	t.Run("other sum is refused", func(t *testing.T) {
		spec := found.Spec(opts)
		spec.SHA256 = wrong
		p, err := host.Start(context.Background(), spec, discConfig(t))
		if err == nil {
			p.Close()
			t.Fatal("started despite a wrong pin")
		}
		checkRefusal(t, err, sum, wrong)
	})
	t.Run("changed binary is refused", func(t *testing.T) {
		f, err := os.OpenFile(bin, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("tampered")); err != nil {
			t.Fatal(err)
		}
		f.Close()
		changed, _ := host.FileSHA256(bin)
		spec := found.Spec(opts)
		spec.SHA256 = sum
		p, err := host.Start(context.Background(), spec, discConfig(t))
		if err == nil {
			p.Close()
			t.Fatal("started a changed binary")
		}
		checkRefusal(t, err, changed, sum)
	})
}

func checkRefusal(t *testing.T, err error, got, pinned []byte) {
	t.Helper()
	if !errors.Is(err, host.ErrChecksum) || !errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
		t.Errorf("error %v does not wrap ErrChecksum and go-plugin's", err)
	}
	for _, w := range []string{fmt.Sprintf("has SHA-256 %x", got), fmt.Sprintf("pinned %x", pinned), "--plugin-sha256 sanexpiry=" + hex.EncodeToString(got),
		fmt.Sprintf(`the line "%x  tlspin-verifier-sanexpiry" of a checksums file`, got)} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func TestPluginReceivesOnlyItsEnvironment(t *testing.T) {
	hostEnv := map[string]string{
		"PATH":               "/usr/bin:/bin",
		"HOME":               "/home/someone",
		"TMPDIR":             t.TempDir(),
		"TLSPIN_LOG_LEVEL":   "debug",
		"AWS_SECRET_KEY":     "do-not-leak",
		"TLSPIN_PLUGIN_PATH": "/somewhere",
	}
	cfg := discConfig(t)
	cfg.Env = host.PluginEnv(func(k string) string { return hostEnv[k] })
	var keys []string
	for kv := range strings.SplitSeq(probeSummary(t, "env", cfg), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		keys = append(keys, k)
		if want, ok := hostEnv[k]; ok && v != want {
			t.Errorf("plugin got %s=%q, want %q", k, v, want)
		}
	}
	want := []string{"HOME", "PATH", "PLUGIN_MAX_PORT", "PLUGIN_MIN_PORT", "PLUGIN_PROTOCOL_VERSIONS", "PLUGIN_UNIX_SOCKET_DIR", "TLSPIN_LOG_LEVEL", "TLSPIN_VERIFIER_PLUGIN", "TMPDIR"}
	if !rpc.PeerCredsSupported {
		want = slices.Insert(want, 2, "PLUGIN_CLIENT_CERT") // AutoMTLS
	}
	if !slices.Equal(keys, want) {
		t.Errorf("plugin environment has %q; want exactly %q", keys, want)
	}
}

// TestFindTypos: a misspelt name or a path that names nothing is the
// caller's typo (ErrUnknownVerifier, a usage error for the CLI), and a
// name near a known one is suggested, as is a colon before options
// written after a comma.
func TestFindTypos(t *testing.T) {
	f := &host.Finder{Builtins: []string{"allowlist", "ca", "md5pin", "sha256pin", "spkipin", "tofu"}, SysPath: t.TempDir()}
	for _, tt := range []struct {
		name, says, not string
	}{
		{"spkipn", `did you mean "spkipin"?`, ""},
		{"SPKIPIN", `did you mean "spkipin"?`, ""},
		{"tof", `did you mean "tofu"?`, ""},
		{"sha265pin", `did you mean "sha256pin"?`, ""},
		{"md5pin,chain=any", `did you mean "md5pin:chain=any"? options follow the name after a colon`, ""},
		{"cb", `unknown verifier "cb"`, "did you mean"},
		{"nothinglikeit", `unknown verifier "nothinglikeit"`, "did you mean"},
		{"./nosuch/" + host.ExecPrefix + "x", "no such file", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Find(tt.name)
			if !errors.Is(err, host.ErrUnknownVerifier) {
				t.Fatalf("Find(%q) = %v, want ErrUnknownVerifier", tt.name, err)
			}
			if !strings.Contains(err.Error(), tt.says) || (tt.not != "" && strings.Contains(err.Error(), tt.not)) {
				t.Errorf("Find(%q) = %v, want it to say %q and not %q", tt.name, err, tt.says, tt.not)
			}
		})
	}
}

// TestListShowsWhatFindRuns: what List shows for a name (`tlspin
// verifiers`) is what Find runs for it: the same file from the same
// place, unusable exactly when Find refuses it, and the same ignored
// shadows of a built-in. Each case puts something in the first directory
// searched and a good plugin in the second.
func TestListShowsWhatFindRuns(t *testing.T) {
	const name = "x"
	file := host.ExecPrefix + name
	tests := []struct {
		name  string
		first func(t *testing.T, dir string)
		root  bool // meaningless for root, whom modes do not stop
	}{
		{"nothing", func(*testing.T, string) {}, true},
		{"a plugin", func(t *testing.T, dir string) { writeScript(t, dir, file, "exit 0") }, true},
		{"a directory", func(t *testing.T, dir string) {
			if err := os.Mkdir(filepath.Join(dir, file), 0o755); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"a link to a directory", func(t *testing.T, dir string) {
			if err := os.Symlink(t.TempDir(), filepath.Join(dir, file)); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"a dangling link", func(t *testing.T, dir string) {
			if err := os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, file)); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"a plugin every user may write", func(t *testing.T, dir string) {
			p := writeScript(t, dir, file, "exit 0")
			if err := os.Chmod(p, 0o777); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"a file not executable", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, file), []byte("#!/bin/sh\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"a named pipe", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, file), 0o755); err != nil {
				t.Fatal(err)
			}
		}, true},
		// A directory that can be searched but not read: List cannot see
		// its plugin, Find runs it.
		{"a plugin in a directory that cannot be listed", func(t *testing.T, dir string) {
			writeScript(t, dir, file, "exit 0")
			if err := os.Chmod(dir, 0o311); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o755) })
		}, false},
	}
	for _, tc := range tests {
		for _, builtin := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/builtin=%v", tc.name, builtin), func(t *testing.T) {
				if !tc.root && os.Geteuid() == 0 {
					t.Skip("root reads any directory")
				}
				first, second := t.TempDir(), t.TempDir()
				tc.first(t, first)
				writeScript(t, second, file, "exit 0")
				f := &host.Finder{PluginDirs: []string{first, second}, Self: "/usr/bin/tlspin-test-self", SelfArgs: func(n string) []string { return []string{"__verifier", n} }}
				if builtin {
					f.Builtins = []string{name}
				}
				found, findErr := f.Find(name)
				list, err := f.List()
				if err != nil {
					t.Fatal(err)
				}
				var listed *host.Found
				for i := range list {
					if list[i].Name == name {
						if listed != nil {
							t.Fatalf("List shows %q twice: %+v", name, list)
						}
						listed = &list[i]
					}
				}
				switch {
				case listed == nil:
					t.Fatalf("List does not show %q; Find: %+v, %v", name, found, findErr)
				case findErr != nil:
					if listed.Unusable == "" || !strings.Contains(findErr.Error(), listed.Path) {
						t.Errorf("Find refuses it (%v); List shows %s from %s, unusable %q", findErr, listed.Path, listed.Source, listed.Unusable)
					}
				default:
					if listed.Path != found.Path || listed.Source != found.Source || listed.Unusable != "" || !slices.Equal(listed.Shadowed, found.Shadowed) {
						t.Errorf("Find runs %s from %s (ignoring %q); List shows %s from %s (ignoring %q), unusable %q",
							found.Path, found.Source, found.Shadowed, listed.Path, listed.Source, listed.Shadowed, listed.Unusable)
					}
				}
			})
		}
	}
}

// TestScriptPluginsInterpreterIsChecked: a plugin that is a script runs
// the interpreter its #! line names, which another user owning it could
// make decide whom to trust; Find refuses it, saying why, and List shows
// why. For #!/usr/bin/env NAME, NAME is looked up on SysPath, the $PATH
// the plugin runs with (the rest: internal/files
// TestScriptInterpreterIsChecked).
func TestScriptPluginsInterpreterIsChecked(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file away")
	}
	if _, err := os.Stat("/usr/bin/env"); err != nil {
		t.Skip("no /usr/bin/env here")
	}
	const name = "x"
	for _, tc := range []struct {
		name, line string
		theirs     bool // the interpreter (or the program env finds) is uid 65534's
		want       string
	}{
		{"a trusted interpreter", "#!INTERP", false, ""},
		{"an interpreter another user owns", "#!INTERP", true, "belongs to uid 65534"},
		{"env, a trusted program on $PATH", "#!/usr/bin/env interp", false, ""},
		{"env, another user's program on $PATH", "#!/usr/bin/env interp", true, `which env finds on $PATH`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin, plugins := t.TempDir(), t.TempDir()
			interp := filepath.Join(bin, "interp")
			if err := os.WriteFile(interp, []byte("\x7fELF, say\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.theirs {
				if err := os.Chown(interp, 65534, 65534); err != nil {
					t.Fatal(err)
				}
			}
			p := filepath.Join(plugins, host.ExecPrefix+name)
			if err := os.WriteFile(p, []byte(strings.Replace(tc.line, "INTERP", interp, 1)+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			f := &host.Finder{PluginDirs: []string{plugins}, SysPath: bin}
			_, err := f.Find(name)
			list, _ := f.List()
			var listed host.Found
			for _, l := range list {
				if l.Name == name {
					listed = l
				}
			}
			switch {
			case tc.want == "" && (err != nil || listed.Unusable != ""):
				t.Fatalf("refused: %v; List: %q", err, listed.Unusable)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(listed.Unusable, tc.want)):
				t.Fatalf("ATTACK: Find: %v; List: %q; want refused with %q", err, listed.Unusable, tc.want)
			}
		})
	}
}
