//go:build unix

package files

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// OpenTrusted opens path, a file that says whom to trust, for reading,
// unless another user may have written it or may choose which file path
// leads to:
//   - the file belongs to someone other than this user or root, or every
//     user may write it (a group-writable file is accepted: a team may
//     keep a list together);
//   - a directory the path passes through belongs to someone else, or
//     every user may write it and it is not sticky (as /tmp is);
//   - a directory the path passes through may be written by a group
//     that has other members than this user, and is not sticky, unless
//     the file itself is writable by that same group (its members may
//     change it anyway): they could replace or remove a file they were
//     not given;
//   - a symbolic link on the way belongs to someone else;
//   - the file, or a directory on the way, has an access control list
//     that lets another user, or a group with other members, write it.
//
// The path is walked one name at a time, as the kernel would, links and
// ".." included, and the file the walk reached is opened without following
// links: what was checked is what is read. It must be a regular file: a
// FIFO, which open(2) would wait on, is refused at once. A name that does
// not exist gives an error matching fs.ErrNotExist, after the directories
// before it were checked.
func OpenTrusted(path string) (*os.File, error) {
	real, shared, err := walk(path, false)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if len(shared) > 0 && errors.Is(err, fs.ErrNotExist) {
			return nil, refuseShared(path, shared, nil, false)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err == nil {
		err = checkFile(st, path, shared)
	}
	if err == nil {
		err = checkACL(path, aclWriter(int(f.Fd()), ""))
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkACL refuses path if writer (aclWriter's) names someone.
func checkACL(path, writer string) error {
	if writer == "" {
		return nil
	}
	return untrusted("%s has %s: getfacl %s shows it, setfacl -b %s removes it", path, writer, path, path)
}

// CheckExecutable refuses the program at path, a verifier plugin that
// will decide whom to trust, on the same grounds as OpenTrusted: another
// user may have written it, or may change which file path leads to.
// A script is refused, too, if the interpreter its #! line names would
// be (and, for #!/usr/bin/env NAME, the NAME env finds on searchPath, the
// $PATH the program will run with, "" if none): it runs as this user and
// decides whom to trust as surely as the script does. See
// checkInterpreter.
func CheckExecutable(path, searchPath string) error {
	return checkProgram(path, searchPath, 0)
}

// checkProgram is CheckExecutable for the program at path, the depth'th
// on the way from the plugin through #! lines and env (0 for the plugin
// itself). An interpreter that does not exist is accepted: nothing runs,
// and the start fails naming it.
func checkProgram(path, searchPath string, depth int) error {
	real, shared, err := walk(path, false)
	var st os.FileInfo
	if err == nil {
		st, err = os.Lstat(real)
	}
	if depth > 0 && errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := checkFile(st, path, shared); err != nil {
		return err
	}
	if err := checkACL(path, aclWriter(-1, real)); err != nil {
		return err
	}
	// A team may keep a list together, but a program a group may write
	// runs as this user whatever another member puts in it.
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && st.Mode().Perm()&0o020 != 0 && !privateGroup(sys.Gid) {
		return untrusted("%s may be written by group %s (mode %04o), whose other members could change what it decides: chmod g-w %s", path, groupName(sys.Gid), st.Mode().Perm(), path)
	}
	return checkInterpreter(path, real, searchPath, depth)
}

// Resolve returns path with every symbolic link resolved, having checked
// the directories it passes through and the links it follows as
// OpenTrusted does: the name of the file itself, which is what a writer
// must replace (a rename over a link replaces the link, not the file it
// leads to). Where a name does not exist, the rest of path is appended to
// the resolved directory as it is, so that a file (and directories) not
// yet created resolve to where they will be, the file a dangling link
// leads to included; a missing name followed by ".." is an error matching
// fs.ErrNotExist. The file itself is not checked: open it with
// OpenTrusted.
func Resolve(path string) (string, error) {
	real, shared, err := walk(path, true)
	if err == nil && len(shared) > 0 {
		// What is written there is this user's alone (0600): a group
		// that may write the directory could replace or remove it.
		err = refuseShared(path, shared, nil, true)
	}
	if err != nil {
		return "", fmt.Errorf("files: resolving %q: %w", path, err)
	}
	return real, nil
}

// checkFile refuses st, what path leads to, unless it is a regular file
// that only this user or root may have written, or a group that may also
// write every directory in shared.
func checkFile(st os.FileInfo, path string, shared []groupDir) error {
	switch {
	case st.IsDir():
		return fmt.Errorf("%s is a directory", path)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file (%s)", path, st.Mode().Type())
	}
	if err := owned(st, path+" belongs to", "so that user decides whom it trusts"); err != nil {
		return err
	}
	if st.Mode().Perm()&0o002 != 0 {
		return untrusted("%s may be written by every user (mode %04o), so anyone could change whom it trusts: chmod o-w %s", path, st.Mode().Perm(), path)
	}
	var others []groupDir
	for _, g := range shared {
		if sys, ok := st.Sys().(*syscall.Stat_t); !ok || st.Mode().Perm()&0o020 == 0 || sys.Gid != g.gid {
			others = append(others, g)
		}
	}
	if len(others) > 0 {
		return refuseShared(path, others, st, false)
	}
	return nil
}

// groupDir is a directory on a path that a group with other members than
// this user may write, and that is not sticky.
type groupDir struct {
	dir  string
	gid  uint32
	mode fs.FileMode
}

// refuseShared says why path is refused: groups may write the
// directories in shared. st is the file, nil if it does not exist; writer
// is for a file this user alone is to write (a key, tofu's store), which
// no group is to be given. The advice names every such directory at once.
func refuseShared(path string, shared []groupDir, st os.FileInfo, writer bool) error {
	g := shared[0]
	what := "replace or remove it"
	if st == nil {
		what = "put a file of theirs there"
	}
	dirs := make([]string, len(shared))
	for i, d := range shared {
		dirs[i] = d.dir
	}
	advice := "chmod g-w " + strings.Join(dirs, " ")
	if !writer && st != nil {
		advice += fmt.Sprintf(", or, if that group's members are meant to change %s, make it writable by the group too", path)
	}
	return untrusted("%s is in %s, which group %s may write to (mode %04o, not sticky), and %s could %s: %s",
		path, g.dir, groupName(g.gid), g.mode.Perm(), groupMembers(), what, advice)
}

// ErrUntrusted is matched by a refusal because another user may have
// written the file, or may change what its path leads to.
var ErrUntrusted = errors.New("files: another user may have written it")

// untrustedError is such a refusal, saying why.
type untrustedError struct{ msg string }

func (e *untrustedError) Error() string        { return e.msg }
func (e *untrustedError) Is(target error) bool { return target == ErrUntrusted }

func untrusted(format string, args ...any) error {
	return &untrustedError{msg: fmt.Sprintf(format, args...)}
}

// maxLinks is how many symbolic links a walk follows, as Linux's ELOOP.
const maxLinks = 40

// walk returns path with every symbolic link resolved, having checked
// each directory it passes through and each link it follows (see
// OpenTrusted), so that no other user can change where it leads, but for
// the directories a group may write (shared), which only the file can
// clear. With missing, a name that does not exist ends the walk (see
// Resolve).
func walk(path string, missing bool) (real string, shared []groupDir, err error) {
	if path == "" {
		return "", nil, errors.New("files: empty path")
	}
	full := path
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			return "", nil, err
		}
		full = wd + "/" + path
	}
	names := strings.Split(full, "/")
	cur, links := "/", 0
	checked := map[string]bool{}
	for len(names) > 0 {
		name := names[0]
		names = names[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur) // cur has no links: its parent is its name's
			continue
		}
		if !checked[cur] {
			g, err := safeDir(path, cur)
			if err != nil {
				return "", nil, err
			}
			if g != nil {
				shared = append(shared, *g)
			}
			checked[cur] = true
		}
		next := filepath.Join(cur, name)
		st, err := os.Lstat(next)
		if missing && errors.Is(err, fs.ErrNotExist) && !slices.Contains(names, "..") {
			return filepath.Join(append([]string{next}, names...)...), shared, nil
		}
		if err != nil {
			if len(shared) > 0 && errors.Is(err, fs.ErrNotExist) {
				// Missing, perhaps removed by the group: not "missing".
				return "", nil, refuseShared(path, shared, nil, false)
			}
			return "", nil, err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", nil, fmt.Errorf("%s: more than %d symbolic links", path, maxLinks)
		}
		if err := owned(st, fmt.Sprintf("%s passes through %s, a symbolic link that belongs to", path, next), "so that user chooses where it leads"); err != nil {
			return "", nil, err
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", nil, err
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		names = append(strings.Split(target, "/"), names...)
	}
	return cur, shared, nil
}

// safeDir refuses dir, a directory path passes through, if another user
// could replace what is in it; if only the members of its group could, it
// returns that group for the file to clear.
func safeDir(path, dir string) (*groupDir, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if err := owned(st, fmt.Sprintf("%s is in %s, which belongs to", path, dir), "so that user could replace it"); err != nil {
		return nil, err
	}
	if w := aclWriter(-1, dir); w != "" && st.Mode()&os.ModeSticky == 0 && !readOnly(dir) {
		return nil, untrusted("%s is in %s, which has %s, so they could replace it: getfacl %s shows it, setfacl -b %s removes it", path, dir, w, dir, dir)
	}
	perm := st.Mode().Perm()
	if perm&0o022 == 0 || st.Mode()&os.ModeSticky != 0 || readOnly(dir) {
		return nil, nil
	}
	if perm&0o002 != 0 {
		return nil, untrusted("%s is in %s, which every user may write to (mode %04o, not sticky), so anyone could replace it", path, dir, perm)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || privateGroup(sys.Gid) {
		return nil, nil
	}
	return &groupDir{dir: dir, gid: sys.Gid, mode: st.Mode()}, nil
}

// overflowUID is how a user namespace shows a user it does not map.
const overflowUID = 65534

// owned refuses st unless it belongs to this user or root; what starts
// the error ("PATH belongs to") and why ends it.
func owned(st os.FileInfo, what, why string) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	me := os.Geteuid()
	if int(sys.Uid) == me || sys.Uid == 0 {
		return nil
	}
	err := untrusted("%s uid %d, not to this user (uid %d) or root, %s", what, sys.Uid, me, why)
	if sys.Uid == overflowUID {
		err = fmt.Errorf("%w (in a user namespace, uid %d is how any user outside it shows, root included: keep trust files where the namespace maps their owner)", err, overflowUID)
	}
	return err
}
