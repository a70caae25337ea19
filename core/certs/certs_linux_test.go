package certs_test

import (
	"errors"
	"os"
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
