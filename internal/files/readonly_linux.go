package files

import "golang.org/x/sys/unix"

// readOnly reports whether dir is on a file system mounted read-only,
// where no one can write, whatever its mode says (a Kubernetes ConfigMap
// volume: mode 0777, mounted read-only).
func readOnly(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Flags&unix.ST_RDONLY != 0
}
