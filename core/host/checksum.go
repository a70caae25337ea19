package host

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tlspin/tlspin/internal/files"
)

// ErrBadChecksum wraps every error parsing a plugin checksum.
var ErrBadChecksum = errors.New("host: bad plugin checksum")

// Checksums maps a verifier name to the SHA-256 its executable must have
// (Spec.SHA256). For a built-in verifier the executable is tlspin itself.
type Checksums map[string][]byte

// Add pins name to sum; pinning a name to two different sums is an error.
func (c Checksums) Add(name string, sum []byte) error {
	if old, ok := c[name]; ok && !bytes.Equal(old, sum) {
		return fmt.Errorf("%w: %q pinned to both %x and %x", ErrBadChecksum, name, old, sum)
	}
	c[name] = sum
	return nil
}

// ParseSHA256 parses a SHA-256 written as 64 hex digits, any case.
func ParseSHA256(s string) ([]byte, error) {
	b, ok := parseHex(s)
	if !ok {
		return nil, fmt.Errorf("%w: %q is not a SHA-256 (want 64 hex digits, as sha256sum prints)", ErrBadChecksum, s)
	}
	return b, nil
}

func parseHex(s string) ([]byte, bool) {
	b, err := hex.DecodeString(s)
	return b, err == nil && len(b) == sha256.Size
}

// ParseChecksumFlag parses the value of --plugin-sha256: NAME=HEX.
func ParseChecksumFlag(s string) (name string, sum []byte, err error) {
	name, h, ok := strings.Cut(s, "=")
	name, h = strings.TrimSpace(name), strings.TrimSpace(h)
	if !ok || name == "" {
		return "", nil, fmt.Errorf("%w: %q: want NAME=HEX (HEX from sha256sum %sNAME)", ErrBadChecksum, s, ExecPrefix)
	}
	sum, ok = parseHex(h)
	if !ok {
		return "", nil, fmt.Errorf("%w: %q: %q is not a SHA-256 (want 64 hex digits, as sha256sum prints)", ErrBadChecksum, s, h)
	}
	return name, sum, nil
}

// ParseChecksums reads sha256sum output: lines of "HEX  FILE" (or
// "HEX *FILE"), where FILE's base name is tlspin-verifier-NAME; FILE may
// have a directory. Blank lines and lines starting with # are skipped.
// Any other line is an error giving its number.
func ParseChecksums(r io.Reader) (Checksums, error) {
	c := Checksums{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		h, file, ok := strings.Cut(line, " ")
		file = strings.TrimPrefix(strings.TrimLeft(file, " "), "*")
		if !ok || file == "" {
			return nil, fmt.Errorf("%w: line %d %q: want \"HEX  %sNAME\" as sha256sum prints", ErrBadChecksum, n, line, ExecPrefix)
		}
		// The sum first: a line that is not sha256sum's says so, rather
		// than that its second word names no plugin.
		sum, ok := parseHex(h)
		if !ok {
			return nil, fmt.Errorf("%w: line %d: %q is not a SHA-256 (want \"HEX  %sNAME\", HEX 64 hex digits, as sha256sum prints)", ErrBadChecksum, n, h, ExecPrefix)
		}
		name, isPlugin := strings.CutPrefix(filepath.Base(file), ExecPrefix)
		if !isPlugin || name == "" {
			return nil, fmt.Errorf("%w: line %d: %q is not a verifier plugin (want a file named %sNAME)", ErrBadChecksum, n, file, ExecPrefix)
		}
		if old, dup := c[name]; dup && !bytes.Equal(old, sum) {
			return nil, fmt.Errorf("%w: line %d: %q pinned again, to %x after %x", ErrBadChecksum, n, name, sum, old)
		}
		c[name] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadChecksum, err)
	}
	return c, nil
}

// maxChecksumsFile bounds what LoadChecksums reads: tens of thousands of
// sha256sum lines.
const maxChecksumsFile = 4 << 20

// LoadChecksums reads a checksum file (--plugin-checksums), see
// ParseChecksums. It says which plugin executables may run, so it is
// refused as a trust file is (files.OpenTrusted) if another user may have
// written it or may replace it: its owner, its mode, the directories and
// links on its path, an ACL. Only a regular file is read: a named pipe is
// refused at once, never waited on.
func LoadChecksums(path string) (Checksums, error) {
	data, read, err := files.ReadIfSmall(path, maxChecksumsFile)
	if err != nil {
		return nil, fmt.Errorf("host: plugin checksums: %w", err)
	}
	if !read {
		return nil, fmt.Errorf("host: plugin checksums: %q is larger than %d bytes", path, maxChecksumsFile)
	}
	c, err := ParseChecksums(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return c, nil
}

// FileSHA256 returns the SHA-256 of the file at path, as a checksum pin
// compares it.
func FileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("host: checksum: %w", err)
	}
	defer f.Close()
	sum, err := sha256Of(f)
	if err != nil {
		return nil, fmt.Errorf("host: checksum of %q: %w", path, err)
	}
	return sum, nil
}
