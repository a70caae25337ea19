package files

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// readOnly reports whether no one can write dir, whatever its mode says,
// because it is mounted read-only (a Kubernetes ConfigMap volume: mode
// 0777, mounted read-only): its file system itself is read-only, or its
// mount is and no writable mount that this process can see shows dir. A
// read-only bind mount of a directory is no such thing where the
// directory is also mounted writable: whoever may write it there replaces
// what the read-only path shows. A writable mount in another mount
// namespace (the kubelet's, the host's) cannot be seen from here.
func readOnly(dir string) bool {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil || st.Flags&unix.ST_RDONLY == 0 {
		return false
	}
	ms, err := mounts()
	if err != nil {
		return false // cannot tell
	}
	// dir is on the last of the longest mount points that hold it (a
	// mount over another comes after it).
	var on *mountEntry
	for i, m := range ms {
		if within(dir, m.point) && (on == nil || len(m.point) >= len(on.point)) {
			on = &ms[i]
		}
	}
	switch {
	case on == nil || !on.readOnly:
		return false
	case on.fsReadOnly:
		return true
	}
	rel, err := filepath.Rel(on.point, dir)
	if err != nil {
		return false
	}
	inFS := filepath.Join(on.root, rel) // dir's path in its file system
	for _, m := range ms {
		if m.dev == on.dev && !m.readOnly && within(inFS, m.root) {
			return false
		}
	}
	return true
}

// mountEntry is a line of /proc/self/mountinfo: the file system's device,
// the directory of it that is mounted (root), where, and whether the mount
// or the file system itself is read-only.
type mountEntry struct {
	dev, root, point     string
	readOnly, fsReadOnly bool
}

// mounts reads this process's mounts, in the order they were made.
func mounts() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mountEntry
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		// ID PARENT MAJOR:MINOR ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPEROPTIONS
		f := strings.Fields(s.Text())
		sep := slices.Index(f, "-")
		if sep < 6 || len(f) < sep+4 {
			continue
		}
		out = append(out, mountEntry{
			dev: f[2], root: unescapeMount(f[3]), point: unescapeMount(f[4]),
			readOnly:   slices.Contains(strings.Split(f[5], ","), "ro"),
			fsReadOnly: slices.Contains(strings.Split(f[sep+3], ","), "ro"),
		})
	}
	return out, s.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}
