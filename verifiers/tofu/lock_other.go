//go:build !unix

package tofu

import "os"

// lockDir is a no-op where flock is not available: processes sharing a
// pins file may then race when both record a new peer at once.
func lockDir(string) (func(), error) { return func() {}, nil }

func inode(os.FileInfo) uint64 { return 0 }
