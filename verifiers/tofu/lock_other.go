//go:build !unix

package tofu

import (
	"context"
	"os"
)

// lockSuffix names the lock file next to a pins file (unused here).
const lockSuffix = ".lock"

// lock is a no-op where flock is not available: processes sharing a
// pins file may then race when both record a new peer at once.
func lock(context.Context, string, func(string)) (func(), error) { return func() {}, nil }

func inode(os.FileInfo) uint64 { return 0 }
