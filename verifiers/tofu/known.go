package tofu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/internal/files"
)

// header starts a new pins file.
const header = "# tlspin trust-on-first-use pins, one peer a line: HOST:PORT spki:BASE64 [# comment]\n" +
	"# A line is added the first time a peer is seen; delete a line to forget that pin.\n"

// record is one line of the pins file.
type record struct {
	pin     pin.Pin
	line    int
	comment string
}

// known is a parsed pins file.
type known struct {
	byKey map[string][]record
	// data is the file as read, to be appended to.
	data  []byte
	lines int
	stamp stamp
	// inPlace says this version was written over the one read before it
	// in the same file (an editor's save in place), perhaps caught half
	// written; tlspin itself only ever replaces the file.
	inPlace bool
}

// stamp identifies one version of a file cheaply. The change time is
// part of it: a key's pin is as long as another's, so a key replaced in
// place by a tool that keeps the modification time (cp -p, touch -r)
// changes neither the size nor the modification time.
type stamp struct {
	exists  bool
	size    int64
	mod     time.Time
	changed time.Time
	ino     uint64
}

func stampOf(fi os.FileInfo) stamp {
	return stamp{exists: true, size: fi.Size(), mod: fi.ModTime(), changed: files.ChangeTime(fi), ino: inode(fi)}
}

// parseKnown parses a pins file. The error names the first line that does
// not parse, as `FILE:LINE: what is wrong`; the lines that do are in k all
// the same.
func parseKnown(name string, data []byte) (k *known, err error) {
	k = &known{byKey: map[string][]record{}, data: data}
	bad := func(e error) {
		if err == nil {
			err = e
		}
	}
	// A byte order mark, which some editors start a file with, is not
	// part of the first key.
	rest := bytes.TrimPrefix(data, []byte("\ufeff"))
	for len(rest) > 0 {
		k.lines++
		var line []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, nil
		}
		s, comment := string(line), ""
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s, comment = s[:i], strings.TrimSpace(s[i+1:])
		}
		f := strings.Fields(s)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			bad(fmt.Errorf("%s:%d: want HOST:PORT spki:BASE64, got %q", name, k.lines, strings.TrimSpace(string(line))))
			continue
		}
		if r, ok := invisible(f[0]); ok {
			bad(fmt.Errorf("%s:%d: the key %q holds %s, which no peer's key does: remove it", name, k.lines, f[0], r))
			continue
		}
		key := CanonicalKey(f[0])
		if perr := ValidKey(key); perr != nil {
			want := "HOST:PORT, such as example.com:443"
			if strings.HasPrefix(key, "client@") {
				want = "client@HOST, such as client@192.0.2.1"
			}
			bad(fmt.Errorf("%s:%d: the key %q %v, which no peer's key does: want %s", name, k.lines, f[0], perr, want))
			continue
		}
		p, perr := pin.Parse(pin.SPKI, f[1])
		if perr != nil {
			bad(fmt.Errorf("%s:%d: %w", name, k.lines, perr))
			continue
		}
		k.byKey[key] = append(k.byKey[key], record{pin: p, line: k.lines, comment: comment})
	}
	return k, err
}

// checkKey refuses a key that would not read back as one key of one line:
// empty, or holding white space, '#' or an invisible character.
func checkKey(key string) error {
	if key == "" || strings.ContainsFunc(key, unicode.IsSpace) || strings.Contains(key, "#") {
		return fmt.Errorf("tofu: bad key %q", key)
	}
	if r, ok := invisible(key); ok {
		return fmt.Errorf("tofu: bad key %q: it holds %s", key, r)
	}
	return nil
}

// ValidKey refuses a server's key (canonical) that no peer's key can be:
// one whose port is neither a port number nor a unix socket's path, or
// whose host is empty. Its pin would apply to no peer, and the peer the
// user meant would be taken as new (a URL pasted as the key,
// https://example.com, reads as the host "https" with the port
// "//example.com"). Key makes keys without a port, and for a unix socket
// unix:/path (or NAME:/path with a server name), /path or @name: those
// pass. A client's key, client@HOST, has no port (Key drops the
// client's ephemeral one): client@192.0.2.1:5000, as serve logs a
// client's address, or client@ with no host, is refused too.
func ValidKey(key string) error {
	if h, ok := strings.CutPrefix(key, "client@"); ok {
		if h == "" {
			return errors.New("has no host")
		}
		if _, port, err := net.SplitHostPort(h); err == nil && isPortNumber(port) {
			return fmt.Errorf("has the port %q (a client is recorded without its port)", port)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(key)
	if err != nil || strings.HasPrefix(host, "/") || strings.HasPrefix(host, "@") {
		return nil
	}
	if host == "" {
		return errors.New("has no host")
	}
	if !portOrPath(port) {
		return fmt.Errorf("has the port %q, not a number up to 65535", port)
	}
	return nil
}

// isPortNumber reports whether p is a port number, 0 to 65535.
func isPortNumber(p string) bool {
	_, err := strconv.ParseUint(p, 10, 16)
	return err == nil
}

// portOrPath reports whether p, the part of an address after its last
// colon, is a port number or a unix socket's path (/path, or @name for
// one in the abstract namespace), as a unix target's address unix:/path
// splits.
func portOrPath(p string) bool {
	if isPortNumber(p) {
		return true
	}
	return strings.HasPrefix(p, "@") || strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//")
}

// invisible describes the first character of key that does not show in an
// editor or is not UTF-8: a control or format character (a zero-width
// space, a byte order mark), one that Unicode says to draw as nothing
// (a variation selector, a Hangul filler), or the blank Braille pattern.
// A key holding one matches no peer, whose pin would then go unenforced,
// the peer taken as new.
func invisible(key string) (string, bool) {
	for i, r := range key {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(key[i:], "\ufffd"):
			return fmt.Sprintf("the byte 0x%02x, which is not UTF-8,", key[i]), true
		case unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector) || r == '\u2800':
			return fmt.Sprintf("the invisible character U+%04X", r), true
		}
	}
	return "", false
}

// keep returns the pins of k that next, a version of the file that does
// not parse, still lists on lines that parse, and how many of k's it
// drops: a bad edit can take trust away but never give it. Line numbers
// and comments are next's.
func (k *known) keep(next *known) (kept *known, dropped int) {
	kept = &known{byKey: map[string][]record{}}
	for key, recs := range k.byKey {
		for _, r := range recs {
			i := slices.IndexFunc(next.byKey[key], func(n record) bool { return n.pin.Equal(r.pin.Digest) })
			if i < 0 {
				dropped++
				continue
			}
			kept.byKey[key] = append(kept.byKey[key], next.byKey[key][i])
		}
	}
	return kept, dropped
}

// readKnown reads and parses the pins file; a missing file is empty.
func readKnown(path string) (*known, error) { return readKnownAs(path, path) }

// readKnownAs is readKnown of file, named name in the errors of lines
// that do not parse (the pins file as the user named it, file resolved).
func readKnownAs(name, file string) (*known, error) {
	k, err := readKnownPartly(name, file)
	if err != nil {
		return nil, err
	}
	return k, nil
}

// readKnownPartly is readKnown, except that with the error of a file
// that does not parse it returns the lines that do. A missing file is
// empty only if no other user could have removed it: otherwise anyone
// could make every recorded peer new again.
func readKnownPartly(name, path string) (*known, error) {
	// A missing name is reported only once the directories before it
	// were found safe.
	f, err := files.OpenTrusted(path)
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
	data, err := files.ReadBounded(f, path)
	if err != nil {
		return nil, fmt.Errorf("tofu: %w", err)
	}
	k, err := parseKnown(name, data)
	k.stamp = stampOf(fi)
	if err != nil {
		return k, fmt.Errorf("tofu: %w", err)
	}
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

// Entry is one recorded pin of a pins file, for tools that edit the file
// (tlspin known-pins) the way the verifier does.
type Entry struct {
	// Key is HOST:PORT, or client@HOST for a client (see Key).
	Key     string
	Pin     pin.Pin
	Line    int
	Comment string
}

// ReadPins returns the pins recorded in the file at path (~ expanded), in
// file order. A missing file records none.
func ReadPins(path string) ([]Entry, error) {
	path, err := files.ExpandHome(path)
	if err != nil {
		return nil, fmt.Errorf("tofu: %w", err)
	}
	k, err := readKnown(path)
	if err != nil {
		return nil, err
	}
	return k.entries(func(string) bool { return true }), nil
}

// AddPin records p for key in the file at path, under the lock the
// verifier takes (waiting for it until ctx is done), replacing the file
// atomically. A pin already recorded
// for key is not added again (added is false). It returns the other pins
// recorded for key, which the verifier accepts as well.
func AddPin(ctx context.Context, path, key string, p pin.Pin, comment string) (added bool, others []Entry, err error) {
	if err := checkKey(key); err != nil {
		return false, nil, err
	}
	key = CanonicalKey(key)
	if err := ValidKey(key); err != nil {
		return false, nil, fmt.Errorf("tofu: bad key %q: it %w", key, err)
	}
	err = editKnown(ctx, path, settleFor, func(k *known) ([]byte, error) {
		for _, r := range k.byKey[key] {
			if r.pin.Equal(p.Digest) {
				return nil, nil
			}
		}
		others = k.entries(func(x string) bool { return x == key })
		l := line(key, pin.Pin{Algo: pin.SPKI, Digest: p.Digest})
		if comment != "" {
			l += " # " + comment
		}
		data, _ := k.appendLine(l)
		added = true
		return data, nil
	})
	return added, others, err
}

// RemovePins deletes every line of the file at path whose key matches,
// under the lock the verifier takes (waiting for it until ctx is done),
// and returns what was removed.
func RemovePins(ctx context.Context, path string, match func(key string) bool) (removed []Entry, err error) {
	err = editKnown(ctx, path, settleFor, func(k *known) ([]byte, error) {
		removed = k.entries(match)
		if len(removed) == 0 {
			return nil, nil
		}
		drop := map[int]bool{}
		for _, e := range removed {
			drop[e.Line] = true
		}
		// Not nil, even when every line goes: nil means nothing to write.
		out := []byte{}
		n := 0
		for l := range bytes.Lines(k.data) {
			if n++; !drop[n] {
				out = append(out, l...)
			}
		}
		return out, nil
	})
	return removed, err
}

// editKnown reads the pins file at path under its lock and writes what
// edit returns (nothing when it returns nil). Like the verifier, it edits
// the file a symbolic link at path leads to, not the link. A file empty
// or cut short (its last line without a newline), changed less than
// settle ago, is read again once it has stayed unchanged that long: an
// editor saving it in place may have emptied it and not yet written it
// all, and an edit of what was read then, replacing the file, lost every
// other pin (the editor's write went to the file it had open). tlspin's
// own writes end with a newline, and need no wait.
func editKnown(ctx context.Context, path string, settle time.Duration, edit func(*known) ([]byte, error)) error {
	path, err := files.ExpandHome(path)
	if err != nil {
		return fmt.Errorf("tofu: %w", err)
	}
	file, err := files.Resolve(path)
	if err != nil {
		return fmt.Errorf("tofu: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("tofu: %w", err)
	}
	unlock, err := lock(ctx, file, nil)
	if err != nil {
		return err
	}
	defer unlock()
	k, err := readKnownAs(path, file)
	if err != nil {
		return err
	}
	if len(k.data) == 0 || k.data[len(k.data)-1] != '\n' { // perhaps half-written
		if err := waitSettled(ctx, file, k.stamp, settle); err != nil {
			return err
		}
		if k, err = readKnownAs(path, file); err != nil {
			return err
		}
	}
	data, err := edit(k)
	if err != nil || data == nil {
		return err
	}
	if err := files.WriteAtomic(file, data, 0o600); err != nil {
		return fmt.Errorf("tofu: %w", err)
	}
	return nil
}

// entries lists the records whose key matches, in file order.
func (k *known) entries(match func(string) bool) []Entry {
	var out []Entry
	for key, recs := range k.byKey {
		if !match(key) {
			continue
		}
		for _, r := range recs {
			out = append(out, Entry{Key: key, Pin: r.pin, Line: r.line, Comment: r.comment})
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return a.Line - b.Line })
	return out
}
