package host_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/host"
)

const (
	sumA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	sumB = "60303AE22B998861BCE3B28F33EEC1BE758A213C86C93C076DBE9F558C11C752"
)

func TestParseChecksums(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		errWith string
	}{
		{"sha256sum text mode", sumA + "  tlspin-verifier-foo\n", map[string]string{"foo": sumA}, ""},
		{"binary mode, paths, comments, upper case", "# plugins\n\n" + sumA + " *bin/tlspin-verifier-foo\n" + sumB + "  /opt/x/tlspin-verifier-bar\n",
			map[string]string{"foo": sumA, "bar": strings.ToLower(sumB)}, ""},
		{"same pin twice", sumA + "  tlspin-verifier-foo\n" + sumA + "  other/tlspin-verifier-foo\n", map[string]string{"foo": sumA}, ""},
		{"empty", "", map[string]string{}, ""},
		{"conflicting pins", sumA + "  tlspin-verifier-foo\n" + sumB + "  tlspin-verifier-foo\n", nil, `line 2: "foo" pinned again`},
		{"not a plugin", sumA + "  README.md\n", nil, `line 1: "README.md" is not a verifier plugin`},
		{"prefix only", sumA + "  tlspin-verifier-\n", nil, "is not a verifier plugin"},
		{"short hex", "abcd  tlspin-verifier-foo\n", nil, `line 1: "abcd" is not a SHA-256`},
		{"a line that is not sha256sum's", "garbage line\n", nil, `line 1: "garbage" is not a SHA-256`},
		{"no file", sumA + "\n", nil, "line 1"},
		{"md5sum output", "d41d8cd98f00b204e9800998ecf8427e  tlspin-verifier-foo\n", nil, "is not a SHA-256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := host.ParseChecksums(strings.NewReader(tc.in))
			if tc.errWith != "" {
				if !errors.Is(err, host.ErrBadChecksum) || !strings.Contains(err.Error(), tc.errWith) {
					t.Fatalf("err = %v; want ErrBadChecksum saying %q", err, tc.errWith)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d pins %x; want %v", len(got), got, tc.want)
			}
			for name, h := range tc.want {
				want, _ := host.ParseSHA256(h)
				if !bytes.Equal(got[name], want) {
					t.Errorf("%s: %x, want %s", name, got[name], h)
				}
			}
		})
	}
}

func TestParseChecksumFlag(t *testing.T) {
	tests := []struct {
		in      string
		name    string
		errWith string
	}{
		{"foo=" + sumA, "foo", ""},
		{" foo = " + sumB, "foo", ""},
		{sumA, "", "want NAME=HEX"},
		{"=" + sumA, "", "want NAME=HEX"},
		{"foo=xyz", "", `"xyz" is not a SHA-256`},
		{"foo=", "", "is not a SHA-256"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			name, sum, err := host.ParseChecksumFlag(tc.in)
			if tc.errWith != "" {
				if !errors.Is(err, host.ErrBadChecksum) || !strings.Contains(err.Error(), tc.errWith) || !strings.Contains(err.Error(), tc.in) {
					t.Fatalf("err = %v; want ErrBadChecksum quoting %q and saying %q", err, tc.in, tc.errWith)
				}
				return
			}
			if err != nil || name != tc.name || len(sum) != 32 {
				t.Fatalf("= %q, %x, %v; want %q and a 32-byte sum", name, sum, err, tc.name)
			}
		})
	}
}

func TestChecksumsAddAndLoad(t *testing.T) {
	a, _ := host.ParseSHA256(sumA)
	b, _ := host.ParseSHA256(sumB)
	p := filepath.Join(t.TempDir(), "SHA256SUMS")
	if err := os.WriteFile(p, []byte(sumA+"  tlspin-verifier-foo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := host.LoadChecksums(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Add("foo", a); err != nil {
		t.Errorf("re-adding the same pin: %v", err)
	}
	if err := c.Add("foo", b); !errors.Is(err, host.ErrBadChecksum) {
		t.Errorf("conflicting pin: %v; want ErrBadChecksum", err)
	}
	if err := c.Add("bar", b); err != nil || !bytes.Equal(c["bar"], b) {
		t.Errorf("new pin: %v", err)
	}
	if _, err := host.LoadChecksums(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(p, []byte("junk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := host.LoadChecksums(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("bad file: %v; want an error naming %s", err, p)
	}
}

func TestPluginEnv(t *testing.T) {
	got := host.PluginEnv(func(k string) string {
		return map[string]string{"PATH": "/bin", "TLSPIN_LOG_LEVEL": "warn", "SECRET": "x", "HOME": ""}[k]
	})
	want := []string{"PATH=/bin", "TLSPIN_LOG_LEVEL=warn"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("PluginEnv = %q; want %q (empty and unlisted variables dropped)", got, want)
	}
}

func FuzzParseChecksums(f *testing.F) {
	f.Add(sumA + "  tlspin-verifier-foo\n")
	f.Add("# c\n" + sumB + " *a/b/tlspin-verifier-x\n\n")
	f.Add(sumA + "  tlspin-verifier-\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := host.ParseChecksums(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, host.ErrBadChecksum) {
				t.Fatalf("error %v does not wrap ErrBadChecksum", err)
			}
			return
		}
		for name, sum := range c {
			if name == "" || strings.Contains(name, "/") || len(sum) != 32 {
				t.Fatalf("pin %q=%x from %q", name, sum, in)
			}
		}
	})
}

// TestLoadChecksumsRefusesOthersFiles: a --plugin-checksums file chooses
// which plugin executables may run, so another user who may write it (or
// replace it) could pin their own: it is refused as a trust file is
// (files.OpenTrusted), saying why, and a FIFO without waiting on it.
func TestLoadChecksumsRefusesOthersFiles(t *testing.T) {
	line := []byte(sumA + "  tlspin-verifier-foo\n")
	write := func(t *testing.T, dir string, mode os.FileMode) string {
		p := filepath.Join(dir, "SHA256SUMS")
		if err := os.WriteFile(p, line, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string
		want  string // "" if loaded
	}{
		{"this user's", func(t *testing.T, dir string) string { return write(t, dir, 0o644) }, ""},
		{"writable by every user", func(t *testing.T, dir string) string { return write(t, dir, 0o666) }, "may be written by every user (mode 0666)"},
		{"in a directory every user may write", func(t *testing.T, dir string) string {
			p := write(t, dir, 0o644)
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			return p
		}, "which every user may write to"},
		{"another user's", func(t *testing.T, dir string) string {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a file away")
			}
			p := write(t, dir, 0o644)
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return p
		}, "uid 65534"},
		{"through another user's link", func(t *testing.T, dir string) string {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a link away")
			}
			p := write(t, dir, 0o644)
			l := filepath.Join(dir, "link")
			if err := os.Symlink(p, l); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(l, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return l
		}, "symbolic link that belongs to uid 65534"},
		{"a named pipe", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "SHA256SUMS")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.setup(t, t.TempDir())
			type result struct {
				c   host.Checksums
				err error
			}
			done := make(chan result, 1)
			go func() { c, err := host.LoadChecksums(p); done <- result{c, err} }()
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("LoadChecksums did not return within 10s")
			}
			if tc.want == "" {
				if r.err != nil || r.c["foo"] == nil {
					t.Fatalf("LoadChecksums: %v, %v; want foo pinned", r.c, r.err)
				}
				return
			}
			if r.err == nil || !strings.Contains(r.err.Error(), tc.want) || !strings.Contains(r.err.Error(), "checksums") {
				t.Errorf("LoadChecksums: %v, %v; want it refused, saying %q", r.c, r.err, tc.want)
			}
		})
	}
}

// A built-in re-executed from this very program runs /proc/self/exe; a
// pin it fails names the program's own file, which the user can hash and
// pin, not the link every process has.
func TestChecksumErrorNamesThisProgram(t *testing.T) {
	if _, err := os.Stat("/proc/self/exe"); err != nil {
		t.Skip("no /proc/self/exe here")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	_, err = host.OpenPinned("spkipin", "/proc/self/exe", make([]byte, 32))
	if !errors.Is(err, host.ErrChecksum) {
		t.Fatalf("OpenPinned with a wrong pin: %v; want ErrChecksum", err)
	}
	if !strings.Contains(err.Error(), `"`+exe+`" (this program, run as /proc/self/exe)`) {
		t.Errorf("error %q; want it to name %s, this program", err, exe)
	}
}
