package files

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	p := filepath.Join(dir, "f")
	for _, content := range []string{"one\n", "two\n"} {
		if err := WriteAtomic(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", st.Mode().Perm())
	}
	dst, _ := os.Stat(dir)
	if dst.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", dst.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the file (no temporaries left)", len(ents))
	}
}

// TestWriteAtomicRefusesALink: renaming over a symbolic link replaces
// the link, not the file it leads to, which silently becomes a private
// copy that no longer sees the original's changes (a shared tofu store).
func TestWriteAtomicRefusesALink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "shared")
	link := filepath.Join(dir, "link")
	if err := os.WriteFile(target, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteAtomic(link, []byte("new\n"), 0o600); err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Errorf("WriteAtomic through a link = %v, want it refused", err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v, %v", fi, err)
	}
	if data, _ := os.ReadFile(target); string(data) != "old\n" {
		t.Errorf("target holds %q", data)
	}
}

func TestExpandHome(t *testing.T) {
	t.Setenv("HOME", "/home/x")
	tests := map[string]string{"~": "/home/x", "~/a/b": "/home/x/a/b", "/abs": "/abs", "rel/~": "rel/~", "~other": "~other"}
	for in, want := range tests {
		if got, err := ExpandHome(in); err != nil || got != want {
			t.Errorf("ExpandHome(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestReadIfSmall(t *testing.T) {
	dir := t.TempDir()
	small, big, empty := filepath.Join(dir, "small"), filepath.Join(dir, "big"), filepath.Join(dir, "empty")
	for name, n := range map[string]int{small: 10, big: 11, empty: 0} {
		if err := os.WriteFile(name, []byte(strings.Repeat("x", n)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		path string
		read bool
		says string // the error, "" for none
	}{
		{small, true, ""},
		{empty, true, ""},
		{big, false, ""},
		{filepath.Join(dir, "none"), false, "no such file"},
		{dir, false, "is a directory"},
	} {
		data, read, err := ReadIfSmall(tt.path, 10)
		switch {
		case tt.says == "" && err != nil, tt.says != "" && (err == nil || !strings.Contains(err.Error(), tt.says)):
			t.Errorf("ReadIfSmall(%s) error %v; want %q", tt.path, err, tt.says)
		case read != tt.read:
			t.Errorf("ReadIfSmall(%s) read %v; want %v", tt.path, read, tt.read)
		case read && string(data) != strings.Repeat("x", map[string]int{small: 10, empty: 0}[tt.path]):
			t.Errorf("ReadIfSmall(%s) = %q", tt.path, data)
		case !read && data != nil:
			t.Errorf("ReadIfSmall(%s) returned %d bytes it did not read", tt.path, len(data))
		}
	}
}

// TestReadTrustedIsBounded: a trust file the size of the disk (a sparse
// file made with truncate by whoever may write it, such as a team
// member of a group-writable allowlist, or one that grows while it is
// read) was read whole into memory at every reload, until the verifier's
// process was killed for it, and others with it.
func TestReadTrustedIsBounded(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		size int64
		ok   bool
	}{
		{"at the bound", MaxTrustedSize, true},
		{"one byte more", MaxTrustedSize + 1, false},
		{"the size of a disk", 1 << 40, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(tc.size); err != nil {
				f.Close()
				t.Skipf("cannot make a sparse file of %d bytes here: %v", tc.size, err)
			}
			f.Close()
			data, err := ReadTrusted(p)
			switch {
			case tc.ok && (err != nil || int64(len(data)) != tc.size):
				t.Errorf("read %d bytes, %v; want %d", len(data), err, tc.size)
			case !tc.ok && !errors.Is(err, ErrTooLarge):
				t.Errorf("read %d bytes, %v; want an error wrapping ErrTooLarge", len(data), err)
			case !tc.ok && !strings.Contains(err.Error(), p):
				t.Errorf("the error %q does not name the file", err)
			}
		})
	}
}
