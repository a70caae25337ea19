package files

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// aclXattr holds a file's access ACL, where it has one beyond its mode.
const aclXattr = "system.posix_acl_access"

// POSIX ACL entry tags and the write permission, as the kernel stores
// them (linux/posix_acl_xattr.h).
const (
	aclUser  = 0x02
	aclGroup = 0x08
	aclMask  = 0x10
	aclWrite = 0x02
)

// aclWriter names who, besides the owner, the owning group and every
// user, may write a file through its access ACL (a named user or group
// entry, setfacl -m u:bob:rw), or says why that cannot be told; "" if no
// one. path is for reading the ACL when fd is negative.
func aclWriter(fd int, path string) string {
	get := func(dest []byte) (int, error) {
		if fd >= 0 {
			return unix.Fgetxattr(fd, aclXattr, dest)
		}
		return unix.Lgetxattr(path, aclXattr, dest)
	}
	n, err := get(nil)
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) || (err == nil && n == 0) {
		return "" // no ACL beyond the mode
	}
	if err != nil {
		return fmt.Sprintf("an access control list that cannot be read (%v)", err)
	}
	buf := make([]byte, n)
	if n, err = get(buf); err != nil {
		return fmt.Sprintf("an access control list that cannot be read (%v)", err)
	}
	return aclWriterIn(buf[:n])
}

// aclWriterIn is aclWriter for the xattr's bytes: a version (2), then
// entries of a tag, permissions and an id.
func aclWriterIn(b []byte) string {
	if len(b) < 4 || binary.LittleEndian.Uint32(b) != 2 || (len(b)-4)%8 != 0 {
		return "an access control list tlspin cannot read"
	}
	maskWrites := true // named entries come with a mask; without one, none
	who := ""
	for e := b[4:]; len(e) >= 8; e = e[8:] {
		tag, perm, id := binary.LittleEndian.Uint16(e), binary.LittleEndian.Uint16(e[2:]), binary.LittleEndian.Uint32(e[4:])
		switch {
		case tag == aclMask:
			maskWrites = perm&aclWrite != 0
		case who != "" || perm&aclWrite == 0:
		case tag == aclUser && int(id) != os.Geteuid():
			who = fmt.Sprintf("user %d", id)
		case tag == aclGroup && !privateGroup(id):
			who = "group " + groupName(id)
		}
	}
	if !maskWrites || who == "" {
		return ""
	}
	return "an access control list that lets " + who + " write it"
}
