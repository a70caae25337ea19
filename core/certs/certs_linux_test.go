package certs_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tlspin/tlspin/core/certs"
)

// TestWriteFilesForceKeepsTheOldPair: with --force, a certificate that
// cannot be replaced after its key was (another user's file in a sticky
// directory, an immutable file, a disk error) must leave the old pair as
// it was. Putting the new key in place, then removing it, lost the old
// key and left the old certificate without it.
func TestWriteFilesForceKeepsTheOldPair(t *testing.T) {
	tests := []struct {
		name string
		// setup writes what is there before and returns the key's and
		// the certificate's paths.
		setup func(t *testing.T, dir string) (keyPath, certPath string)
	}{
		{"both exist, side by side", func(t *testing.T, dir string) (string, string) {
			kp, cp := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
			mustWrite(t, kp, "old key", 0o600)
			mustWrite(t, cp, "old cert", 0o644)
			immutable(t, cp)
			return kp, cp
		}},
		{"both exist, in two directories", func(t *testing.T, dir string) (string, string) {
			os.Mkdir(filepath.Join(dir, "keys"), 0o700)
			os.Mkdir(filepath.Join(dir, "certs"), 0o755)
			kp, cp := filepath.Join(dir, "keys", "key.pem"), filepath.Join(dir, "certs", "cert.pem")
			mustWrite(t, kp, "old key", 0o600)
			mustWrite(t, cp, "old cert", 0o644)
			immutable(t, cp)
			return kp, cp
		}},
		{"no key yet", func(t *testing.T, dir string) (string, string) {
			cp := filepath.Join(dir, "cert.pem")
			mustWrite(t, cp, "old cert", 0o644)
			immutable(t, cp)
			return filepath.Join(dir, "key.pem"), cp
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			kp, cp := tc.setup(t, dir)
			before := listDir(t, dir)
			err := certs.WriteFiles([]certs.File{
				{Path: kp, Data: []byte("new key"), Mode: 0o600},
				{Path: cp, Data: []byte("new cert"), Mode: 0o644},
			}, true)
			if !errors.Is(err, os.ErrPermission) {
				t.Fatalf("err = %v, want a permission error", err)
			}
			if after := listDir(t, dir); after != before {
				t.Fatalf("files changed on failure:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// fsImmutableFL is FS_IMMUTABLE_FL of linux/fs.h, which x/sys/unix lacks.
const fsImmutableFL = 0x10

func mustWrite(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// immutable sets the immutable attribute on p (chattr +i), which makes
// even root's rename over it fail, until the test ends; it skips the test
// where that cannot be done (no CAP_LINUX_IMMUTABLE, a file system
// without it).
func immutable(t *testing.T, p string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err == nil {
		err = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsImmutableFL))
	}
	if err != nil {
		t.Skipf("cannot make %s immutable here: %v", p, err)
	}
	t.Cleanup(func() {
		if f, err := os.Open(p); err == nil {
			unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags))
			f.Close()
		}
	})
}

// TestWriteFilesSameFileThroughABindMount: --key-out and --out naming one
// file through a bind mount (a directory mounted at a second place, which
// no symbolic link shows) are refused as through a symlinked directory.
// The certificate was written over the key just written: the new key was
// lost, and with --force the old one too.
func TestWriteFilesSameFileThroughABindMount(t *testing.T) {
	for _, tt := range []struct {
		name  string
		old   bool // a key and certificate exist already
		force bool
	}{
		{"new files", false, false},
		{"new files, force", false, true},
		{"old files, force", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			real, alias := filepath.Join(dir, "real"), filepath.Join(dir, "alias")
			for _, d := range []string{real, alias} {
				if err := os.Mkdir(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if out, err := exec.Command("mount", "--bind", real, alias).CombinedOutput(); err != nil {
				t.Skipf("cannot bind-mount here: %v %s", err, out)
			}
			t.Cleanup(func() { exec.Command("umount", "-l", alias).Run() })
			if tt.old {
				mustWrite(t, filepath.Join(real, "x.pem"), "old key and cert", 0o600)
			}
			before := listDir(t, real)
			err := certs.WriteFiles([]certs.File{
				{Path: filepath.Join(real, "x.pem"), Data: []byte("new key"), Mode: 0o600},
				{Path: filepath.Join(alias, "x.pem"), Data: []byte("new cert"), Mode: 0o644},
			}, tt.force)
			if !errors.Is(err, certs.ErrSameFile) {
				t.Fatalf("err = %v, want %v", err, certs.ErrSameFile)
			}
			if after := listDir(t, real); after != before {
				t.Fatalf("files changed on failure:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}
