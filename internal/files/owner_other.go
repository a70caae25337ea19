//go:build !unix

package files

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// OpenTrusted opens path for reading: ownership and modes are checked on
// Unix only.
func OpenTrusted(path string) (*os.File, error) { return os.Open(path) }

// Resolve returns path with its symbolic links resolved; where a name
// does not exist, the rest of path is appended as it is. Nothing is
// checked here, and a dangling link resolves to itself.
func Resolve(path string) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err == nil {
		return real, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("files: resolving %q: %w", path, err)
	}
	dir := filepath.Dir(path)
	if dir == path {
		return path, nil
	}
	d, err := Resolve(dir)
	if err != nil {
		return "", err
	}
	return filepath.Join(d, filepath.Base(path)), nil
}

// CheckExecutable checks nothing: ownership and modes are checked on Unix
// only.
func CheckExecutable(path, searchPath string) error { return nil }
