package files

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// setACL gives path an access ACL: the owner rw, user 54321 with perm,
// the owning group r, a mask of mask, every user r. The case is skipped
// where the file system keeps no ACLs.
func setACL(t *testing.T, path string, perm, mask uint16) {
	t.Helper()
	const unset = 0xffffffff
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{0x01, 6, unset}, {aclUser, perm, 54321}, {0x04, 4, unset}, {aclMask, mask, unset}, {0x20, 4, unset}} {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	if err := unix.Setxattr(path, aclXattr, b, 0); err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			t.Skipf("no ACLs on this file system: %v", err)
		}
		t.Fatal(err)
	}
}

// TestACLLetsAnotherUserWrite is the attack of another user whom an
// access ACL lets write a trust file, a directory on its path, or a
// verifier plugin (setfacl -m u:bob:rw), while the mode shows only the
// ACL's mask as the group's bits: each is refused, saying so. A named
// entry the mask keeps from writing is harmless.
func TestACLLetsAnotherUserWrite(t *testing.T) {
	const rw, r = 6, 4
	for _, tt := range []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the path to check
		check   func(string) error
		refused string
	}{
		{"a trust file", func(t *testing.T, dir string) string {
			p := file(t, dir, "pins", 0o640)
			setACL(t, p, rw, rw)
			return p
		}, readTrusted, "has an access control list that lets user 54321 write it"},
		{"a trust file, the mask keeping them out", func(t *testing.T, dir string) string {
			p := file(t, dir, "pins", 0o640)
			setACL(t, p, rw, r)
			return p
		}, readTrusted, ""},
		{"a directory on the path", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "shared")
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			p := file(t, d, "pins", 0o600)
			setACL(t, d, rw|1, rw|1)
			return p
		}, readTrusted, "which has an access control list that lets user 54321 write it"},
		{"a verifier plugin", func(t *testing.T, dir string) string {
			p := file(t, dir, "tlspin-verifier-x", 0o750)
			setACL(t, p, rw|1, rw|1)
			return p
		}, func(p string) error { return CheckExecutable(p, "") }, "has an access control list that lets user 54321 write it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, t.TempDir())
			err := tt.check(path)
			if (err == nil) != (tt.refused == "") || (err != nil && (!strings.Contains(err.Error(), tt.refused) || !errors.Is(err, ErrUntrusted))) {
				t.Fatalf("%v, want refused with %q", err, tt.refused)
			}
		})
	}
}

func readTrusted(path string) error {
	_, err := ReadTrusted(path)
	return err
}
