//go:build unix

package files

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Open opens path for reading if it is a regular file. It does not block
// on a FIFO, which open(2) would until a writer came.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		if st.IsDir() {
			return nil, fmt.Errorf("%s is a directory", path)
		}
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, st.Mode().Type())
	}
	return f, nil
}

// CheckOwner refuses f, opened from path, if another user may have
// written it: it belongs to someone other than this user or root, every
// user may write it, or a directory it is reached through lets another
// user replace it (CheckDirs). A group-writable file is accepted: a team
// may keep a list together.
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
	return CheckDirs(path)
}

// CheckDirs refuses path, a file that says whom to trust, if a directory
// it is reached through lets another user replace it, or rename it away
// and back: one that belongs to someone other than this user or root, or
// that every user may write to and is not sticky (as /tmp is). Like
// OpenSSH's StrictModes it looks at every directory up to the root, both
// as path names them and as its symbolic links resolve, so that a link
// does not hide where the file is. Directories that do not exist yet are
// passed over: for a file still to be made, their parents decide.
func CheckDirs(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	if err := checkDirsUp(path, abs, seen); err != nil {
		return err
	}
	return checkDirsUp(path, resolve(abs), seen)
}

// checkDirsUp checks the directories above abs, skipping those in seen.
func checkDirsUp(path, abs string, seen map[string]bool) error {
	for dir := filepath.Dir(abs); !seen[dir]; dir = filepath.Dir(dir) {
		seen[dir] = true
		st, err := os.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return err
		default:
			if err := owned(path, dir, st); err != nil {
				return err
			}
			if st.Mode().Perm()&0o002 != 0 && st.Mode()&os.ModeSticky == 0 {
				return fmt.Errorf("%s is in %s, which every user may write to (mode %04o, not sticky), so anyone could replace it", path, dir, st.Mode().Perm())
			}
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
	return nil
}

// resolve returns abs with its symbolic links resolved, as far as it
// exists: the part that does not is joined on unchanged.
func resolve(abs string) string {
	for p, rest := abs, ""; ; {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return abs
		}
		p, rest = parent, filepath.Join(filepath.Base(p), rest)
	}
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
