//go:build unix

package files

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadTrustedRefusesOthersFiles is the attack of another local user
// on a file that says whom to trust: a pins or CA file they own (made
// first in a shared directory, or a symlink to theirs), one every user
// may write, or one in a directory every user may write without the
// sticky bit, where they can replace it. Each is refused with why; this
// user's or root's files, group-writable ones and files in a sticky
// directory such as /tmp are read.
func TestReadTrustedRefusesOthersFiles(t *testing.T) {
	const other = 54321
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the path to read
		refused string                                // "" to read
	}{
		{"this user's file", func(t *testing.T, dir string) string { return file(t, dir, "f", 0o600) }, ""},
		{"group-writable", func(t *testing.T, dir string) string { return file(t, dir, "f", 0o664) }, ""},
		{"writable by every user", func(t *testing.T, dir string) string { return file(t, dir, "f", 0o666) }, "may be written by every user (mode 0666)"},
		{"in a sticky shared directory", func(t *testing.T, dir string) string {
			return file(t, chmodDir(t, filepath.Join(dir, "tmp"), os.ModeSticky|0o777), "f", 0o644)
		}, ""},
		{"in a shared directory, not sticky", func(t *testing.T, dir string) string {
			return file(t, chmodDir(t, filepath.Join(dir, "shared"), 0o777), "f", 0o644)
		}, "which every user may write to (mode 0777, not sticky)"},
		{"another user's file", func(t *testing.T, dir string) string {
			p := file(t, dir, "f", 0o644)
			chown(t, p, other)
			return p
		}, "belongs to uid 54321"},
		{"a symlink to another user's file", func(t *testing.T, dir string) string {
			target := file(t, chmodDir(t, filepath.Join(dir, "theirs"), 0o755), "pins", 0o644)
			chown(t, target, other)
			link := filepath.Join(dir, "link")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "belongs to uid 54321"},
		{"in another user's directory", func(t *testing.T, dir string) string {
			d := chmodDir(t, filepath.Join(dir, "theirs"), 0o755)
			p := file(t, d, "f", 0o644)
			chown(t, d, other)
			return p
		}, "which belongs to uid 54321"},
		// The other user may rename this user's file out of their
		// directory and back (an old version, with a revoked pin).
		{"a symlink to this user's file in another user's directory", func(t *testing.T, dir string) string {
			d := chmodDir(t, filepath.Join(dir, "theirs"), 0o755)
			target := file(t, d, "pins", 0o644)
			chown(t, d, other)
			link := filepath.Join(dir, "link")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "which belongs to uid 54321"},
		{"in this user's directory inside another user's", func(t *testing.T, dir string) string {
			d := chmodDir(t, filepath.Join(dir, "theirs"), 0o755)
			p := file(t, chmodDir(t, filepath.Join(d, "mine"), 0o700), "f", 0o600)
			chown(t, d, other)
			return p
		}, "which belongs to uid 54321"},
		{"in a shared directory further up, not sticky", func(t *testing.T, dir string) string {
			d := chmodDir(t, filepath.Join(dir, "shared"), 0o777)
			return file(t, chmodDir(t, filepath.Join(d, "mine"), 0o700), "f", 0o600)
		}, "which every user may write to (mode 0777, not sticky)"},
		// Links in the middle: what the kernel follows, the check must
		// follow, name by name.
		{"two links, the middle one another user's", func(t *testing.T, dir string) string {
			mine := file(t, dir, "broad", 0o600)
			d := chmodDir(t, filepath.Join(dir, "theirs"), 0o755)
			mid := filepath.Join(d, "link")
			symlink(t, mine, mid)
			chown(t, mid, other)
			chown(t, d, other)
			link := filepath.Join(dir, "pins")
			symlink(t, mid, link)
			return link
		}, "belongs to uid 54321"},
		{"dot-dot after a link into another user's directory", func(t *testing.T, dir string) string {
			file(t, dir, "broad", 0o600)
			d := chmodDir(t, filepath.Join(dir, "theirs"), 0o755)
			chmodDir(t, filepath.Join(d, "sub"), 0o755)
			symlink(t, filepath.Join(dir, "broad"), filepath.Join(d, "pins"))
			chown(t, d, other)
			symlink(t, filepath.Join(d, "sub"), filepath.Join(dir, "link"))
			return dir + "/link/../pins" // not Join, which would clean the ".." away
		}, "belongs to uid 54321"},
		{"another user's link in a sticky directory", func(t *testing.T, dir string) string {
			file(t, dir, "pins", 0o600)
			s := chmodDir(t, filepath.Join(dir, "sticky"), os.ModeSticky|0o777)
			link := filepath.Join(s, "pins.d")
			symlink(t, dir, link)
			chown(t, link, other)
			return filepath.Join(link, "pins")
		}, "a symbolic link that belongs to uid 54321"},
		{"a link of this user's to this user's file", func(t *testing.T, dir string) string {
			file(t, chmodDir(t, filepath.Join(dir, "etc"), 0o755), "pins", 0o600)
			link := filepath.Join(dir, "pins")
			symlink(t, "etc/../etc/pins", link)
			return link
		}, ""},
		// Opening a FIFO with no writer blocks: a reload would hang.
		{"a FIFO", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "fifo")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, t.TempDir())
			var data []byte
			var err, smallErr error
			done := make(chan struct{})
			go func() {
				defer close(done)
				data, err = ReadTrusted(path)
				_, _, smallErr = ReadIfSmall(path, CheckedSize)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("ATTACK: reading blocked")
			}
			switch {
			case tt.refused == "" && (err != nil || string(data) != "pins\n" || smallErr != nil):
				t.Fatalf("refused: %v; ReadIfSmall: %v", err, smallErr)
			case tt.refused != "" && (err == nil || !strings.Contains(err.Error(), tt.refused)):
				t.Fatalf("ATTACK: read %q (%v), want refused: %s", data, err, tt.refused)
			case tt.refused != "" && smallErr == nil:
				t.Fatalf("ATTACK: ReadIfSmall, the check before connecting, read it")
			}
		})
	}
}

func file(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("pins\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // not subject to the umask
		t.Fatal(err)
	}
	return p
}

func chmodDir(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	return dir
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// chown gives path to uid, which needs root: the case is skipped without.
func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, -1); err != nil {
		t.Skipf("cannot give a file to another user here: %v", err)
	}
}

type statInfo struct {
	os.FileInfo
	st *syscall.Stat_t
}

func (s statInfo) Sys() any { return s.st }

// TestOwnedNamesTheOverflowUID: in a user namespace, directories of users
// it does not map (root's included) show as uid 65534; the refusal says
// so, since it is otherwise a puzzle.
func TestOwnedNamesTheOverflowUID(t *testing.T) {
	for _, tt := range []struct {
		uid  uint32
		want string
	}{
		{uint32(os.Geteuid()), ""},
		{0, ""},
		{54321, "belongs to uid 54321, not to this user"},
		{overflowUID, "in a user namespace, uid 65534 is how any user outside it shows"},
	} {
		err := owned(statInfo{st: &syscall.Stat_t{Uid: tt.uid}}, "f belongs to", "so")
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("uid %d: %v, want %q", tt.uid, err, tt.want)
		}
	}
}

// TestReadOnlyMount: a directory every user may write, on a file system
// mounted read-only, can be written by no one: a Kubernetes ConfigMap
// volume (mode 0777, a ..data link) is read. Needs to mount a tmpfs.
func TestReadOnlyMount(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("read-only mounts are asked about on Linux only")
	}
	mnt := t.TempDir()
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).Run(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	data := filepath.Join(mnt, "..2026_11_30")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	file(t, data, "pins.txt", 0o644)
	symlink(t, filepath.Base(data), filepath.Join(mnt, "..data"))
	symlink(t, "..data/pins.txt", filepath.Join(mnt, "pins.txt"))
	if err := os.Chmod(mnt, 0o777); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(mnt, "pins.txt")
	if _, err := ReadTrusted(path); err == nil || !strings.Contains(err.Error(), "every user may write to") {
		t.Fatalf("writable: %v, want refused", err)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v %s", err, out)
	}
	if data, err := ReadTrusted(path); err != nil || string(data) != "pins\n" {
		t.Fatalf("read-only: %q, %v; want read", data, err)
	}
}

// TestResolve: the name a writer must replace is the file a path's links
// lead to, whether or not it exists yet, found by the checked walk; a
// link of another user's on the way is refused as OpenTrusted refuses it.
func TestResolve(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	shared := chmodDir(t, filepath.Join(root, "shared"), 0o700)
	store := file(t, shared, "known_pins", 0o600)
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the path
		want  string                                // "" for an error
		err   string
	}{
		{"a file", func(t *testing.T, dir string) string { return store }, store, ""},
		{"a link to a file", func(t *testing.T, dir string) string {
			symlink(t, store, filepath.Join(dir, "link"))
			return filepath.Join(dir, "link")
		}, store, ""},
		{"a relative link to a link", func(t *testing.T, dir string) string {
			symlink(t, store, filepath.Join(dir, "first"))
			symlink(t, "first", filepath.Join(dir, "link"))
			return filepath.Join(dir, "link")
		}, store, ""},
		{"a dangling link: the file it will create", func(t *testing.T, dir string) string {
			symlink(t, filepath.Join(shared, "new"), filepath.Join(dir, "link"))
			return filepath.Join(dir, "link")
		}, filepath.Join(shared, "new"), ""},
		{"a linked directory, the file not created yet", func(t *testing.T, dir string) string {
			symlink(t, shared, filepath.Join(dir, "d"))
			return filepath.Join(dir, "d", "sub", "new")
		}, filepath.Join(shared, "sub", "new"), ""},
		{"a missing directory, then ..", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "nope") + "/../x"
		}, "", "no such file"},
		{"another user's link", func(t *testing.T, dir string) string {
			link := filepath.Join(dir, "link")
			symlink(t, store, link)
			chown(t, link, 54321)
			return link
		}, "", "a symbolic link that belongs to uid 54321"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := chmodDir(t, filepath.Join(root, strings.ReplaceAll(tt.name, " ", "_")), 0o700)
			got, err := Resolve(tt.setup(t, dir))
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Resolve = %q, %v; want an error mentioning %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
