//go:build unix

package files

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// CheckOwner refuses f, opened from path, if another user may have
// written it: it belongs to someone other than this user or root, every
// user may write it, or its directory lets another user replace it
// (belongs to someone else, or every user may write it and it is not
// sticky, as /tmp is). A group-writable file is accepted: a team may keep
// a list together.
func CheckOwner(f *os.File, path string) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := owned(path, "", st); err != nil {
		return err
	}
	if st.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("%s may be written by every user (mode %04o), so anyone could change whom it trusts: chmod o-w %s", path, st.Mode().Perm(), path)
	}
	dir := filepath.Dir(path)
	dst, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if err := owned(path, dir, dst); err != nil {
		return err
	}
	if dst.Mode().Perm()&0o002 != 0 && dst.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("%s is in %s, which every user may write to (mode %04o, not sticky), so anyone could replace it", path, dir, dst.Mode().Perm())
	}
	return nil
}

// owned refuses st, the file path or its directory dir, if it belongs to
// neither this user nor root.
func owned(path, dir string, st os.FileInfo) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	me := os.Geteuid()
	if int(sys.Uid) == me || sys.Uid == 0 {
		return nil
	}
	if dir != "" {
		return fmt.Errorf("%s is in %s, which belongs to uid %d, not to this user (uid %d) or root, so that user could replace it", path, dir, sys.Uid, me)
	}
	return fmt.Errorf("%s belongs to uid %d, not to this user (uid %d) or root, so that user decides whom it trusts", path, sys.Uid, me)
}
