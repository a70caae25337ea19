package tofu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tlspin/tlspin/core/pin"
)

// header starts a new pins file.
const header = "# tlspin trust-on-first-use pins, one peer a line: HOST:PORT spki:BASE64 [# comment]\n" +
	"# A line is added the first time a peer is seen; delete a line to forget that pin.\n"

// record is one line of the pins file.
type record struct {
	pin  pin.Pin
	line int
}

// known is a parsed pins file.
type known struct {
	byKey map[string][]record
	// data is the file as read, to be appended to.
	data  []byte
	lines int
	stamp stamp
}

// stamp identifies one version of a file cheaply.
type stamp struct {
	exists bool
	size   int64
	mod    time.Time
	ino    uint64
}

func stampOf(fi os.FileInfo) stamp {
	return stamp{exists: true, size: fi.Size(), mod: fi.ModTime(), ino: inode(fi)}
}

// parseKnown parses a pins file; errors read `FILE:LINE: what is wrong`.
func parseKnown(name string, data []byte) (*known, error) {
	k := &known{byKey: map[string][]record{}, data: data}
	rest := data
	for len(rest) > 0 {
		k.lines++
		var line []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, nil
		}
		s := string(line)
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = s[:i]
		}
		f := strings.Fields(s)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("%s:%d: want HOST:PORT spki:BASE64, got %q", name, k.lines, strings.TrimSpace(string(line)))
		}
		p, err := pin.Parse(pin.SPKI, f[1])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, k.lines, err)
		}
		key := strings.ToLower(f[0])
		k.byKey[key] = append(k.byKey[key], record{pin: p, line: k.lines})
	}
	return k, nil
}

// readKnown reads and parses the pins file; a missing file is empty.
func readKnown(path string) (*known, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &known{byKey: map[string][]record{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tofu: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tofu: %w", err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("tofu: reading %q: %w", path, err)
	}
	k, err := parseKnown(path, buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("tofu: %w", err)
	}
	k.stamp = stampOf(fi)
	return k, nil
}

// currentStamp returns the stamp of the file now.
func currentStamp(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return stamp{}, nil
	}
	if err != nil {
		return stamp{}, err
	}
	return stampOf(fi), nil
}

// appendLine returns the file's content with line added, and the number
// the new line gets.
func (k *known) appendLine(line string) ([]byte, int) {
	var b bytes.Buffer
	n := k.lines
	if len(k.data) == 0 {
		b.WriteString(header)
		n = strings.Count(header, "\n")
	} else {
		b.Write(k.data)
		if k.data[len(k.data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	b.WriteString(line)
	b.WriteByte('\n')
	return b.Bytes(), n + 1
}
