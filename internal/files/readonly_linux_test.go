package files

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadOnlyBindMount: a read-only mount lets no one write only if the
// directory is not also mounted writable where others reach it. A
// read-only bind mount of a directory every user may write was taken for
// one no one can write, so another user could put an old version of a
// trust file back (mv through the writable path) and have it read
// through the read-only one. A read-only bind whose writable source this
// process cannot see (a Kubernetes ConfigMap's, which is the kubelet's)
// is still read. Needs to mount a tmpfs.
func TestReadOnlyBindMount(t *testing.T) {
	for _, tt := range []struct {
		name string
		// ro is the directory of src bound read-only; rw, if set, one
		// bound writable beside it; hide unmounts src itself (lazily,
		// leaving the binds), as a mount another namespace holds.
		ro, rw string
		hide   bool
		want   string // what the error says; "" to read
	}{
		{"its writable mount visible", ".", "", false, "every user may write to"},
		{"its parent's writable mount visible", "sub", "", false, "every user may write to"},
		{"a writable bind of it visible", "sub", "sub", true, "every user may write to"},
		{"a writable bind of its parent visible", "sub/deeper", "sub", true, "every user may write to"},
		{"no writable mount visible", ".", "", true, ""},
		{"only a sibling's writable bind visible", "sub", "other", true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			src := filepath.Join(base, "src")
			mkdir(t, src, 0o755)
			mount(t, "-t", "tmpfs", "-o", "size=1m", "tmpfs", src)
			for _, d := range []string{"sub", "sub/deeper", "other"} {
				mkdir(t, filepath.Join(src, d), 0o777)
			}
			if err := os.Chmod(src, 0o777); err != nil {
				t.Fatal(err)
			}
			file(t, filepath.Join(src, tt.ro), "pins.txt", 0o644)
			ro := filepath.Join(base, "ro")
			mkdir(t, ro, 0o755)
			mount(t, "--bind", filepath.Join(src, tt.ro), ro)
			mount(t, "-o", "remount,bind,ro", ro)
			if tt.rw != "" {
				rw := filepath.Join(base, "rw")
				mkdir(t, rw, 0o755)
				mount(t, "--bind", filepath.Join(src, tt.rw), rw)
			}
			if tt.hide {
				if out, err := exec.Command("umount", "-l", src).CombinedOutput(); err != nil {
					t.Fatalf("umount -l %s: %v %s", src, err, out)
				}
			}
			data, err := ReadTrusted(filepath.Join(ro, "pins.txt"))
			switch {
			case tt.want == "" && (err != nil || string(data) != "pins\n"):
				t.Fatalf("ReadTrusted = %q, %v; want read", data, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("ReadTrusted = %q, %v; want refused, saying %q", data, err, tt.want)
			}
		})
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // not subject to the umask
		t.Fatal(err)
	}
}

// mount runs mount with args, whose last is the mount point, and unmounts
// it when the test ends; it skips the test where mounting is not allowed.
func mount(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Skipf("cannot mount here: mount %s: %v %s", strings.Join(args, " "), err, out)
	}
	if args[0] == "-o" {
		return // a remount: unmounted as mounted
	}
	point := args[len(args)-1]
	t.Cleanup(func() { exec.Command("umount", "-l", point).Run() })
}

// TestUnescapeMount: mountinfo writes a space, a tab, a newline and a
// backslash in a path as octal escapes, which must not hide a mount of
// such a directory.
func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:            "/plain",
		`/a\040b`:           "/a b",
		`/tab\011nl\012`:    "/tab\tnl\n",
		`/back\134slash`:    `/back\slash`,
		`/short\04`:         `/short\04`,
		`/not\0xyoctal\999`: `/not\0xyoctal\999`,
		`/end\`:             `/end\`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}
