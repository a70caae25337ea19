package allowlist

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/verifiers/pinverifier"
)

// Entry is one line of an allowlist.
type Entry struct {
	Pin pin.Pin
	// Line is the 1-based line number in the file.
	Line int
	// Expires is the first instant the entry no longer holds; zero: never.
	Expires time.Time
	// Comment is the text after '#', trimmed.
	Comment string
}

// List is a parsed allowlist. Lookups are map lookups by digest, not scans.
//
// It is kept compact, for lists of 100,000 pins and more: each digest is
// stored once, as its map key, and the rest of an entry in a slice of small
// records; Lookup rebuilds the Entry it returns (docs/performance.md).
type List struct {
	// Name is the file the list was read from, for messages.
	Name    string
	byKey   [len(algoIndex)]map[digestKey]int32 // digest → index in entries
	entries []record
}

// digestKey is a digest, zero-padded to 32 bytes (within one algorithm all
// digests have the same length): a map key stored inline, without an
// allocation of its own.
type digestKey [32]byte

func keyOf(d []byte) (k digestKey) {
	copy(k[:], d)
	return k
}

// record is an Entry without its pin, which is its key in byKey.
type record struct {
	line    int32
	expires time.Time
	comment string
}

// algoIndex numbers the algorithms an allowlist knows.
var algoIndex = [...]pin.Algo{pin.MD5, pin.SHA1, pin.SHA256, pin.SPKI}

// ErrSyntax is wrapped by every parse error; the message is
// `FILE:LINE: what is wrong`.
var ErrSyntax = errors.New("allowlist: syntax error")

// LineError is a parse error at one line.
type LineError struct {
	File string
	Line int
	Msg  string
}

// Error returns `FILE:LINE: what is wrong`.
func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Unwrap lets errors.Is match ErrSyntax.
func (e *LineError) Unwrap() error { return ErrSyntax }

// Len returns the number of pins.
func (l *List) Len() int { return len(l.entries) }

// Parse reads an allowlist: one pin a line, `ALGO:VALUE [expires=YYYY-MM-DD]
// [# comment]`, ALGO one of md5, sha1, sha256 (the certificate's hash) or
// spki (SHA-256 of the public key). Blank lines and lines starting with '#'
// are ignored. name is used in error messages only.
func Parse(name string, data []byte) (*List, error) {
	l := newList(name)
	err := eachLine(data, func(lineNo int, line []byte) error {
		e, err := parseLine(line)
		if err != nil {
			return &LineError{File: name, Line: lineNo, Msg: err.Error()}
		}
		if e == nil {
			return nil
		}
		m := l.byKey[indexOf(e.Pin.Algo)]
		if prev, dup := m[keyOf(e.Pin.Digest)]; dup {
			return &LineError{File: name, Line: lineNo, Msg: fmt.Sprintf("%s pin %s already listed on line %d", e.Pin.Algo, e.Pin, l.entries[prev].line)}
		}
		if len(l.entries) >= math.MaxInt32 {
			return &LineError{File: name, Line: lineNo, Msg: "too many pins"}
		}
		l.add(m, e, lineNo)
		return nil
	})
	if err != nil {
		return nil, err
	}
	l.entries = slices.Clip(l.entries)
	return l, nil
}

// Keep returns what of l a new version of its file that does not parse
// may leave in force: the pins of l that data still lists on lines that
// parse. A bad edit can so take trust away but never give it: a pin it
// removed, or whose line it broke, is dropped; a pin it added waits until
// the whole file parses; where both versions give an expiry, the earlier
// holds. Line numbers and comments are the new version's. changed reports
// whether the result trusts less than l.
func (l *List) Keep(data []byte) (kept *List, changed bool) {
	k := newList(l.Name)
	eachLine(data, func(lineNo int, line []byte) error {
		e, err := parseLine(line)
		if err != nil || e == nil {
			return nil
		}
		i, key := indexOf(e.Pin.Algo), keyOf(e.Pin.Digest)
		old, ok := l.byKey[i][key]
		if !ok {
			return nil
		}
		e.Expires = earlier(e.Expires, l.entries[old].expires)
		if j, dup := k.byKey[i][key]; dup {
			k.entries[j].expires = earlier(k.entries[j].expires, e.Expires)
			return nil
		}
		k.add(k.byKey[i], e, lineNo)
		return nil
	})
	changed = k.Len() != l.Len()
	for i, m := range k.byKey {
		for key, j := range m {
			changed = changed || !k.entries[j].expires.Equal(l.entries[l.byKey[i][key]].expires)
		}
	}
	k.entries = slices.Clip(k.entries)
	return k, changed
}

// earlier returns the earlier of two expiries, the zero time meaning never.
func earlier(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func newList(name string) *List {
	l := &List{Name: name}
	for i := range l.byKey {
		l.byKey[i] = map[digestKey]int32{}
	}
	return l
}

// add records e, read at lineNo, in m, the map of its algorithm.
func (l *List) add(m map[digestKey]int32, e *Entry, lineNo int) {
	m[keyOf(e.Pin.Digest)] = int32(len(l.entries))
	l.entries = append(l.entries, record{line: int32(min(lineNo, math.MaxInt32)), expires: e.Expires, comment: e.Comment})
}

// eachLine calls f with every line of data and its 1-based number, until
// f returns an error, which it returns. A byte order mark, which some
// editors start a file with, is not part of the first line.
func eachLine(data []byte, f func(lineNo int, line []byte) error) error {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	for lineNo := 1; len(data) > 0; lineNo++ {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		if err := f(lineNo, line); err != nil {
			return err
		}
	}
	return nil
}

func indexOf(a pin.Algo) int {
	for i, b := range algoIndex {
		if a == b {
			return i
		}
	}
	return -1
}

// parseLine parses one line; a blank or comment line gives nil.
func parseLine(raw []byte) (*Entry, error) {
	s := string(raw)
	comment := ""
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s, comment = s[:i], strings.TrimSpace(s[i+1:])
	}
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, nil
	}
	if hasPrefixFold(fields[0], "sha256/") || hasPrefixFold(fields[0], "pin-sha256=") {
		return nil, fmt.Errorf("%q is a curl, OkHttp or HPKP pin: in an allowlist write that public-key pin as spki:BASE64", fields[0])
	}
	algoName, value, ok := strings.Cut(fields[0], ":")
	if !ok || value == "" {
		return nil, fmt.Errorf("%q: want ALGO:VALUE with ALGO one of md5, sha1, sha256, spki", fields[0])
	}
	algo, err := pin.ParseAlgo(algoName)
	if err != nil || indexOf(algo) < 0 {
		return nil, fmt.Errorf("unknown algorithm %q (want md5, sha1, sha256 or spki)", algoName)
	}
	d, err := pin.DecodeValue(algo, value)
	if err != nil {
		return nil, fmt.Errorf("bad %s pin %q: %v", algo, value, err)
	}
	e := &Entry{Pin: pin.Pin{Algo: algo, Digest: d}, Comment: comment}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k != "expires" {
			return nil, fmt.Errorf("unexpected %q after the pin (want expires=YYYY-MM-DD or a # comment)", f)
		}
		if !e.Expires.IsZero() {
			return nil, errors.New("expires given twice")
		}
		t, err := pinverifier.ParseExpiry(v)
		if err != nil {
			return nil, fmt.Errorf("expires=%q: %v", v, err)
		}
		e.Expires = t
	}
	return e, nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// Lookup returns the entries matching certDER, one at most per algorithm.
// Digests are computed only for algorithms the list has entries for. Map
// lookups are not constant-time; that leaks nothing, since a peer's
// certificate and so its digests are public.
func (l *List) Lookup(certDER []byte) ([]*Entry, error) {
	var out []*Entry
	for i, m := range l.byKey {
		if len(m) == 0 {
			continue
		}
		d, err := pin.Sum(algoIndex[i], certDER)
		if err != nil {
			return nil, fmt.Errorf("allowlist: %w", err)
		}
		if j, ok := m[keyOf(d)]; ok {
			r := l.entries[j]
			out = append(out, &Entry{Pin: pin.Pin{Algo: algoIndex[i], Digest: d}, Line: int(r.line), Expires: r.expires, Comment: r.comment})
		}
	}
	return out, nil
}

// Expired returns the lines of the entries past their expiry at now, in
// order.
func (l *List) Expired(now time.Time) []int {
	var out []int
	for _, r := range l.entries {
		if !r.expires.IsZero() && !now.Before(r.expires) {
			out = append(out, int(r.line))
		}
	}
	slices.Sort(out)
	return out
}

// Algos returns the algorithms the list has entries for, in order.
func (l *List) Algos() []pin.Algo {
	var out []pin.Algo
	for i, m := range l.byKey {
		if len(m) > 0 {
			out = append(out, algoIndex[i])
		}
	}
	return out
}
