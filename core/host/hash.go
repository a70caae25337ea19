package host

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/hashicorp/go-plugin"
)

// sha256Of reads r to the end and returns its SHA-256.
func sha256Of(r io.Reader) ([]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// hashEqual compares two sums in constant time.
func hashEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// checksumError says that the executable at path has sum got, not the
// pinned one, and how to pin it if the change is intended. It wraps
// ErrChecksum and go-plugin's ErrChecksumsDoNotMatch.
func checksumError(name, path string, got, pinned []byte) error {
	return fmt.Errorf("%w: verifier %q: %s has SHA-256 %x, pinned %x (%w); refusing to run it (if the change is intended, pin the new sum where the old one is: --plugin-sha256 %s=%x, or the line \"%x  %s%s\" of a checksums file)",
		ErrChecksum, name, shownPath(path), got, pinned, plugin.ErrChecksumsDoNotMatch, name, got, got, ExecPrefix, name)
}

// shownPath quotes path for an error, naming this program's file for
// /proc/self/exe (a built-in re-executed), which is what a user can hash
// and pin: the link names no file.
func shownPath(path string) string {
	if path == "/proc/self/exe" {
		if exe, err := os.Executable(); err == nil {
			return strconv.Quote(exe) + " (this program, run as /proc/self/exe)"
		}
	}
	return strconv.Quote(path)
}
