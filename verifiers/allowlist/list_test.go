package allowlist

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/pin"
)

func TestParseLines(t *testing.T) {
	d32 := bytes.Repeat([]byte{0xab}, 32)
	d16 := bytes.Repeat([]byte{0xcd}, 16)
	d20 := bytes.Repeat([]byte{0xef}, 20)
	d32b := bytes.Repeat([]byte{0x12}, 32)
	file := strings.Join([]string{
		"# a comment line",
		"",
		"spki:" + base64.StdEncoding.EncodeToString(d32) + " # web-1, current",
		"md5:" + strings.ToUpper(hex.EncodeToString(d16)) + "   expires=2030-01-31",
		"  sha1:" + strings.ToUpper(hex.EncodeToString(d20)[:2]) + ":" + colonTail(d20) + "\t",
		"SHA256:" + hex.EncodeToString(d32b) + " expires=2030-01-31 # backup",
		"spki:" + base64.RawURLEncoding.EncodeToString(d32b),
	}, "\n")
	l, err := Parse("pins.txt", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 5 {
		t.Fatalf("Len = %d, want 5", l.Len())
	}
	tests := []struct {
		algo    pin.Algo
		d       []byte
		line    int
		expires string
		comment string
	}{
		{pin.SPKI, d32, 3, "", "web-1, current"},
		{pin.MD5, d16, 4, "2030-02-01", ""},
		{pin.SHA1, d20, 5, "", ""},
		{pin.SHA256, d32b, 6, "2030-02-01", "backup"},
		{pin.SPKI, d32b, 7, "", ""},
	}
	for _, tt := range tests {
		j, ok := l.byKey[indexOf(tt.algo)][keyOf(tt.d)]
		if !ok {
			t.Errorf("%s %x not found", tt.algo, tt.d)
			continue
		}
		r := l.entries[j]
		e := Entry{Line: int(r.line), Expires: r.expires, Comment: r.comment}
		if e.Line != tt.line || e.Comment != tt.comment {
			t.Errorf("%s entry = line %d comment %q, want %d %q", tt.algo, e.Line, e.Comment, tt.line, tt.comment)
		}
		if got := fmtDate(e.Expires); got != tt.expires {
			t.Errorf("%s expires = %q, want %q (the day after the date given)", tt.algo, got, tt.expires)
		}
	}
	if got := fmt.Sprint(l.Algos()); got != "[md5 sha1 sha256 spki]" {
		t.Errorf("Algos = %s", got)
	}
}

func colonTail(d []byte) string {
	h := strings.ToUpper(hex.EncodeToString(d))[2:]
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func fmtDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.DateOnly)
}

func TestParseErrors(t *testing.T) {
	good := "spki:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	tests := []struct {
		name string
		file string
		want string
	}{
		{"no algo", "# x\n" + strings.Repeat("ab", 16), "pins.txt:2: "},
		{"unknown algo", "sha512:AAAA", "pins.txt:1: unknown algorithm \"sha512\""},
		{"empty value", "md5:", "pins.txt:1: \"md5:\": want ALGO:VALUE"},
		{"bad value", "\n\nmd5:xyz", "pins.txt:3: bad md5 pin \"xyz\""},
		{"wrong length", "sha256:" + strings.Repeat("ab", 16), "pins.txt:1: bad sha256 pin"},
		{"curl form", "sha256//" + strings.Repeat("A", 43) + "=", "is a curl, OkHttp or HPKP pin"},
		{"bad expires", good + " expires=2030-13-01", "pins.txt:1: expires=\"2030-13-01\": want a date as YYYY-MM-DD"},
		// It would end at the zero time: "never expires".
		{"expires at the zero time", good + " expires=0000-12-31", "pins.txt:1: expires=\"0000-12-31\": date \"0000-12-31\" is out of range"},
		{"expires twice", good + " expires=2030-01-01 expires=2031-01-01", "expires given twice"},
		{"junk after pin", good + " trailing", "pins.txt:1: unexpected \"trailing\""},
		{"duplicate", good + "\n" + good, "pins.txt:2: spki pin " + good[5:] + " already listed on line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("pins.txt", []byte(tt.file))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want ErrSyntax containing %q", err, tt.want)
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	for _, f := range []string{"", "\n\n", "# only comments\n  # and space\n"} {
		l, err := Parse("p", []byte(f))
		if err != nil || l.Len() != 0 {
			t.Errorf("Parse(%q) = %v, %v; want an empty list", f, l, err)
		}
	}
}

// bigFile makes an allowlist of n lines, every algorithm, some with an
// expiry and a comment; digest i is distinct for every i.
func bigFile(n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 80)
	b.WriteString("# generated\n")
	for i := 1; i < n; i++ {
		seed := make([]byte, 8)
		binary.BigEndian.PutUint64(seed, uint64(i))
		switch i % 4 {
		case 0:
			s := md5.Sum(seed)
			fmt.Fprintf(&b, "md5:%x\n", s)
		case 1:
			s := sha1.Sum(seed)
			fmt.Fprintf(&b, "sha1:%X expires=2040-01-01\n", s)
		case 2:
			s := sha256.Sum256(seed)
			fmt.Fprintf(&b, "sha256:%x # host %d\n", s, i)
		case 3:
			s := sha256.Sum256(seed)
			fmt.Fprintf(&b, "spki:%s\n", base64.StdEncoding.EncodeToString(s[:]))
		}
	}
	return b.Bytes()
}

// TestParse100k loads a 100,000-line file and checks that every pin is
// there, on its line, and that lookups find them. Speed is measured by
// BenchmarkParse100k, not asserted here.
func TestParse100k(t *testing.T) {
	const n = 100_000
	data := bigFile(n)
	if lines := bytes.Count(data, []byte("\n")); lines != n {
		t.Fatalf("generated %d lines, want %d", lines, n)
	}
	l, err := Parse("big.txt", data)
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != n-1 {
		t.Fatalf("Len = %d, want %d", l.Len(), n-1)
	}
	for _, i := range []int{1, 2, 3, 4, 5, 4999, 50_000, 77_777, n - 1} {
		seed := make([]byte, 8)
		binary.BigEndian.PutUint64(seed, uint64(i))
		var algo pin.Algo
		var d []byte
		switch i % 4 {
		case 0:
			s := md5.Sum(seed)
			algo, d = pin.MD5, s[:]
		case 1:
			s := sha1.Sum(seed)
			algo, d = pin.SHA1, s[:]
		case 2:
			s := sha256.Sum256(seed)
			algo, d = pin.SHA256, s[:]
		case 3:
			s := sha256.Sum256(seed)
			algo, d = pin.SPKI, s[:]
		}
		j, ok := l.byKey[indexOf(algo)][keyOf(d)]
		if !ok {
			t.Errorf("entry %d (%s) not found", i, algo)
			continue
		}
		e := l.entries[j]
		if int(e.line) != i+1 {
			t.Errorf("entry %d (%s): %+v, want it on line %d", i, algo, e, i+1)
		}
		if i%4 == 1 && fmtDate(e.expires) != "2040-01-02" {
			t.Errorf("entry %d expires %s", i, fmtDate(e.expires))
		}
		if i%4 == 2 && e.comment != fmt.Sprintf("host %d", i) {
			t.Errorf("entry %d comment %q", i, e.comment)
		}
	}
	// A bad line deep in a big file is reported with its number.
	bad := append(append([]byte{}, data...), "md5:zz\n"...)
	if _, err := Parse("big.txt", bad); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("big.txt:%d:", n+1)) {
		t.Errorf("err = %v, want one at big.txt:%d", err, n+1)
	}
}

func BenchmarkParse100k(b *testing.B) {
	data := bigFile(100_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("big.txt", data); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParse checks that the allowlist parser never panics, that an error
// names the file and a line that exists, and that every entry it accepts
// has the size of its algorithm.
func FuzzParse(f *testing.F) {
	f.Add([]byte("# pins\nspki:YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE= expires=2030-01-01 # web\n"))
	f.Add([]byte("md5:B8:E2:0F:56:CC:BB:6A:CE:B0:F1:98:60:E1:12:40:7A\nsha1:450c92e37770de1cd151eb614a1e6a6014e6992b\n"))
	f.Add([]byte("sha256:55220f53dc6592734ec3f91233be950ed0be7a6a3b32c3ae0330022d308a8ed3 expires=2030-02-30\n"))
	f.Add([]byte("spki:AAAA\n\n\nmd5"))
	f.Add([]byte("sha256//YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE=\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse("f", data)
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.File != "f" || le.Line < 1 || le.Line > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("error %v does not point at a line of the input", err)
			}
			return
		}
		n := 0
		for i, m := range l.byKey {
			for k, j := range m {
				n++
				if d := k[algoIndex[i].Size():]; !bytes.Equal(d, make([]byte, len(d))) || int(j) >= len(l.entries) {
					t.Fatalf("entry %d under %s key %x", j, algoIndex[i], k)
				}
			}
		}
		if n != l.Len() {
			t.Fatalf("Len = %d, entries %d", l.Len(), n)
		}
	})
}

// TestKeep: what a version that does not parse leaves of a list. It can
// only take trust away.
func TestKeep(t *testing.T) {
	a := "sha256:" + strings.Repeat("aa", 32)
	b := "sha256:" + strings.Repeat("bb", 32)
	c := "spki:" + strings.Repeat("cc", 32)
	cur, err := Parse("pins.txt", []byte(a+"\n"+b+" expires=2030-01-31\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		next    string
		want    map[string]string // pin → expiry (exclusive) or "" for never
		changed bool
	}{
		{"unchanged but a bad line", a + "\nmd5:zz\n" + b + " expires=2030-01-31", map[string]string{a: "", b: "2030-02-01"}, false},
		{"one removed", a + "\nmd5:zz", map[string]string{a: ""}, true},
		{"one broken", a + "\n" + b + " expires=2030-13-01", map[string]string{a: ""}, true},
		{"one added", a + "\n" + b + " expires=2030-01-31\n" + c + "\nmd5:zz", map[string]string{a: "", b: "2030-02-01"}, false},
		{"expiry brought forward", a + " expires=2029-06-30\n" + b + " expires=2030-01-31\nmd5:zz", map[string]string{a: "2029-07-01", b: "2030-02-01"}, true},
		{"expiry pushed back", a + "\n" + b + " expires=2031-01-31\nmd5:zz", map[string]string{a: "", b: "2030-02-01"}, false},
		{"expiry dropped", a + "\n" + b + "\nmd5:zz", map[string]string{a: "", b: "2030-02-01"}, false},
		{"listed twice", a + "\n" + a + " expires=2029-06-30\nmd5:zz", map[string]string{a: "2029-07-01"}, true},
		{"nothing left", "md5:zz", map[string]string{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept, changed := cur.Keep([]byte(tt.next))
			if changed != tt.changed {
				t.Errorf("changed = %v, want %v", changed, tt.changed)
			}
			if kept.Len() != len(tt.want) {
				t.Errorf("kept %d pins, want %d", kept.Len(), len(tt.want))
			}
			for s, exp := range tt.want {
				e, err := parseLine([]byte(s))
				if err != nil {
					t.Fatal(err)
				}
				j, ok := kept.byKey[indexOf(e.Pin.Algo)][keyOf(e.Pin.Digest)]
				if !ok {
					t.Errorf("%s not kept", s)
					continue
				}
				got := ""
				if e := kept.entries[j].expires; !e.IsZero() {
					got = e.Format(time.DateOnly)
				}
				if got != exp {
					t.Errorf("%s expires %q, want %q", s, got, exp)
				}
			}
		})
	}
	if cur.Len() != 2 {
		t.Errorf("Keep changed the list it was called on: %d pins", cur.Len())
	}
}

// TestParseByteOrderMark: some editors start a file with a byte order
// mark. It is not part of the first pin's algorithm (the list was refused
// as a whole before, `unknown algorithm "\ufeffspki"`); one anywhere
// else still is an error.
func TestParseByteOrderMark(t *testing.T) {
	d32 := bytes.Repeat([]byte{0xab}, 32)
	line := "spki:" + base64.StdEncoding.EncodeToString(d32)
	l, err := Parse("pins.txt", []byte("\ufeff"+line+"\n"))
	if err != nil {
		t.Fatalf("a list that starts with a byte order mark: %v", err)
	}
	if j, ok := l.byKey[indexOf(pin.SPKI)][keyOf(d32)]; !ok || l.entries[j].line != 1 {
		t.Errorf("the first pin is not read as line 1: %v", ok)
	}
	if k, _ := l.Keep([]byte("\ufeff" + line + "\nbad line\n")); k.Len() != 1 {
		t.Errorf("Keep of a bad edit that starts with a byte order mark kept %d pins, want 1", k.Len())
	}
	if _, err := Parse("pins.txt", []byte(line+"\n\ufeff"+line+"\n")); err == nil {
		t.Error("a byte order mark on the second line parsed")
	}
}
