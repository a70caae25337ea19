//go:build unix && !linux

package files

// readOnly reports whether dir is on a read-only file system; only Linux
// is asked.
func readOnly(string) bool { return false }
