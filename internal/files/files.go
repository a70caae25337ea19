// Package files holds the file handling that trust depends on: expanding
// ~ in a path given as an option, refusing a file another user may have
// written or whose path they may redirect (the file-based verifiers' trust
// files, verifier plugins, private keys' directories), reading a file for
// a check before connecting only if it is small, and replacing a file
// atomically.
package files

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ExpandHome replaces a leading "~" or "~/" with the user's home directory.
func ExpandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("files: expanding %q: %w", p, err)
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~")), nil
}

// CheckedSize is how much of a file a check before connecting reads
// (ReadIfSmall): a few hundred pins, or a few CA certificates, in well
// under a millisecond. A larger file is judged by its verifier when it
// starts: reading it twice would delay every connection.
const CheckedSize = 64 << 10

// ReadIfSmall says why path cannot be read as a file, if it cannot: it
// does not exist, is not a regular file, may not be opened, or another
// user may have written it (OpenTrusted). Otherwise it
// returns the file's contents if they are at most max bytes, and read
// false, having read no more than max+1 bytes, if they are more.
func ReadIfSmall(path string, max int64) (data []byte, read bool, err error) {
	f, err := OpenTrusted(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if st.Size() > max {
		return nil, false, nil
	}
	// The file may have grown since: read one byte more than allowed.
	data, err = io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(data)) > max {
		return nil, false, nil
	}
	return data, true, nil
}

// MaxTrustedSize bounds a file that says whom to trust: an allowlist of
// a million pins, or a tofu store of as many peers, with their comments.
const MaxTrustedSize = 64 << 20

// ErrTooLarge is wrapped by the error for a trust file larger than
// MaxTrustedSize.
var ErrTooLarge = errors.New("files: file too large")

// ReadTrusted reads path, a file that says whom to trust (pins, CA
// certificates), unless another user may have written it (OpenTrusted).
// A file larger than MaxTrustedSize is refused (ErrTooLarge).
func ReadTrusted(path string) ([]byte, error) {
	f, err := OpenTrusted(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadBounded(f, path)
}

// ReadBounded reads the rest of f, a trust file named path, refusing it
// (ErrTooLarge) if it is larger than MaxTrustedSize or grows past it while
// it is read, having read no more than one byte past the bound.
func ReadBounded(f *os.File, path string) ([]byte, error) {
	tooLarge := func(n int64) error {
		return fmt.Errorf("%w: %q is %d bytes or more, and a trust file may have at most %d", ErrTooLarge, path, n, int64(MaxTrustedSize))
	}
	size := int64(0)
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	if size > MaxTrustedSize {
		return nil, tooLarge(size)
	}
	var b bytes.Buffer
	b.Grow(int(size) + bytes.MinRead)
	if _, err := b.ReadFrom(io.LimitReader(f, MaxTrustedSize+1)); err != nil {
		return nil, fmt.Errorf("files: reading %q: %w", path, err)
	}
	if b.Len() > MaxTrustedSize {
		return nil, tooLarge(int64(b.Len()))
	}
	return b.Bytes(), nil
}

// WriteAtomic replaces path with data: it writes a temporary file in the
// same directory with mode perm, syncs it, renames it over path and syncs
// the directory, so that readers see the old file or the new one, never a
// part. Missing parent directories are created with mode 0700. A symbolic
// link at path is refused: the rename would replace the link, not the file
// it leads to (Resolve the path first).
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("files: %q is a symbolic link: replacing it would replace the link, not the file it leads to", path)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("files: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("files: writing %q: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return fmt.Errorf("files: replacing %q: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
