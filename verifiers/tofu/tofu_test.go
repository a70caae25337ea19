package tofu

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/verifiers/internal/vtest"
)

func TestKey(t *testing.T) {
	tests := []struct {
		req  verify.Request
		want string
		err  bool
	}{
		{verify.Request{ServerName: "Example.COM", RemoteAddr: "93.184.216.34:443"}, "example.com:443", false},
		{verify.Request{ServerName: "example.com.", RemoteAddr: "93.184.216.34:8443"}, "example.com:8443", false},
		{verify.Request{RemoteAddr: "127.0.0.1:8443"}, "127.0.0.1:8443", false},
		{verify.Request{RemoteAddr: "[::1]:8443"}, "[::1]:8443", false},
		{verify.Request{ServerName: "host"}, "host", false},
		{verify.Request{}, "", true},
		{verify.Request{Side: verify.ServerVerifiesClient, RemoteAddr: "10.0.0.7:51234", ServerName: "me"}, "client@10.0.0.7", false},
		{verify.Request{Side: verify.ServerVerifiesClient, RemoteAddr: "[::1]:51234"}, "client@::1", false},
		{verify.Request{Side: verify.ServerVerifiesClient}, "", true},
		// A server name that would write a line of its own, or a key no
		// line could be read back as.
		{verify.Request{ServerName: "evil.example\nvictim.example", RemoteAddr: "192.0.2.1:443"}, "", true},
		{verify.Request{ServerName: "a b", RemoteAddr: "192.0.2.1:443"}, "", true},
		{verify.Request{ServerName: "a#b", RemoteAddr: "192.0.2.1:443"}, "", true},
		{verify.Request{ServerName: "a\u200b", RemoteAddr: "192.0.2.1:443"}, "", true},
		// A remote address whose "port" is not a number is no port: a key
		// that the file could not hold (ValidKey) is never made.
		{verify.Request{RemoteAddr: "/run/a:b.sock"}, "/run/a:b.sock", false},
		{verify.Request{ServerName: "example.com", RemoteAddr: "/run/a:b.sock"}, "example.com", false},
		{verify.Request{RemoteAddr: "host:name"}, "", true},
		// A unix target's address: its key as before (pins recorded
		// under it stay valid).
		{verify.Request{RemoteAddr: "unix:/run/x.sock"}, "unix:/run/x.sock", false},
		{verify.Request{ServerName: "db", RemoteAddr: "unix:/run/x.sock"}, "db:/run/x.sock", false},
		{verify.Request{RemoteAddr: "unix:@x"}, "unix:@x", false},
	}
	for _, tt := range tests {
		got, err := Key(&tt.req)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("Key(%+v) = %q, %v; want %q (error %v)", tt.req, got, err, tt.want, tt.err)
		}
	}
}

func newTofu(t *testing.T, opts verify.Options) (*Verifier, error) {
	t.Helper()
	v := New(nil)
	v.now = func() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC) }
	_, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: opts})
	return v, err
}

func req(c *vtest.Cert, addr string) *verify.Request {
	return &verify.Request{PeerChain: vtest.Chain(c), RemoteAddr: addr, Side: verify.ClientVerifiesServer}
}

func TestFirstUseThenChange(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dot-tlspin")
	path := filepath.Join(dir, "known_pins")
	v, err := newTofu(t, verify.Options{"file": {path}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := v.PolicyChanges(ctx)
	a := vtest.New(t, vtest.Spec{CN: "a"})
	aRenewed := a.Renew(t, nil)
	mitm := vtest.New(t, vtest.Spec{CN: "a"})
	aPin := "spki:" + a.Pin(t, pin.SPKI, pin.FormatBase64)
	mitmPin := "spki:" + mitm.Pin(t, pin.SPKI, pin.FormatBase64)

	steps := []struct {
		name   string
		req    *verify.Request
		allow  bool
		reason []string
	}{
		{"first use records", req(a, "127.0.0.1:8443"), true, []string{"127.0.0.1:8443 first use: recorded in " + path}},
		{"same key again", req(a, "127.0.0.1:8443"), true, []string{path + ":3"}},
		{"renewed with the same key", req(aRenewed, "127.0.0.1:8443"), true, []string{path + ":3"}},
		{"other port is another peer", req(mitm, "127.0.0.1:9443"), true, []string{"first use"}},
		{"changed key", req(mitm, "127.0.0.1:8443"), false, []string{
			"REMOTE HOST IDENTIFICATION HAS CHANGED for 127.0.0.1:8443", path + ":3", aPin, mitmPin,
			"tlspin known-pins --file " + path + " remove 127.0.0.1:8443 && tlspin known-pins --file " + path + " add 127.0.0.1:8443 " + mitmPin,
		}},
	}
	for _, s := range steps {
		verdict := vtest.Handshake(t, v, s.req)
		if verdict.Allow != s.allow {
			t.Fatalf("%s: allow = %v (%s), want %v", s.name, verdict.Allow, verdict.Reason, s.allow)
		}
		for _, r := range s.reason {
			if !strings.Contains(verdict.Reason+verdict.Matched, r) {
				t.Errorf("%s: %q does not mention %q", s.name, verdict.Reason+verdict.Matched, r)
			}
		}
	}
	select {
	case c := <-changes:
		if !strings.Contains(c.Reason, "recorded") {
			t.Errorf("policy change %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("recording a pin was not announced")
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := header + "127.0.0.1:8443 " + aPin + " # first seen 2026-03-04\n127.0.0.1:9443 " + mitmPin + " # first seen 2026-03-04\n"
	if string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", fi.Mode().Perm())
	}

	// The fix the message suggests: delete the line, connect again.
	kept := strings.Replace(string(data), "127.0.0.1:8443 "+aPin+" # first seen 2026-03-04\n", "", 1)
	vtest.WriteFile(t, path, []byte(kept))
	if verdict := vtest.Handshake(t, v, req(mitm, "127.0.0.1:8443")); !verdict.Allow || !strings.Contains(verdict.Matched, "first use") {
		t.Fatalf("after deleting the line: %+v, want the new key recorded", verdict)
	}
	if verdict := vtest.Handshake(t, v, req(a, "127.0.0.1:8443")); verdict.Allow {
		t.Fatal("the old key is accepted after the new one was recorded")
	}
}

func TestStrict(t *testing.T) {
	a := vtest.New(t, vtest.Spec{CN: "a"})
	b := vtest.New(t, vtest.Spec{CN: "b"})
	path := filepath.Join(t.TempDir(), "known")
	vtest.WriteFile(t, path, []byte("# mine\nexample.com:443 sha256//"+a.Pin(t, pin.SPKI, pin.FormatBase64)+"\n"))
	v, err := newTofu(t, verify.Options{"file": {path}, "mode": {"STRICT"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		r      *verify.Request
		allow  bool
		reason string
	}{
		{"known", &verify.Request{PeerChain: vtest.Chain(a), ServerName: "example.com", RemoteAddr: "93.184.216.34:443"}, true, path + ":2"},
		{"unknown", req(b, "127.0.0.1:1"), false, "mode=strict accepts only known peers"},
		{"unknown shows the command that trusts it", req(b, "127.0.0.1:1"), false, "if you trust it: tlspin known-pins --file " + path + " add 127.0.0.1:1 spki:" + b.Pin(t, pin.SPKI, pin.FormatBase64)},
		{"changed", &verify.Request{PeerChain: vtest.Chain(b), ServerName: "example.com", RemoteAddr: "93.184.216.34:443"}, false, "HAS CHANGED"},
	}
	for _, tt := range tests {
		verdict := vtest.Handshake(t, v, tt.r)
		if verdict.Allow != tt.allow || !strings.Contains(verdict.Reason+verdict.Matched, tt.reason) {
			t.Errorf("%s: %+v, want allow %v mentioning %q", tt.name, verdict, tt.allow, tt.reason)
		}
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), "127.0.0.1") {
		t.Error("strict mode recorded a peer")
	}
}

func TestConfigureErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	vtest.WriteFile(t, bad, []byte("# ok\nhost:1 spki:AAAA\n"))
	short := filepath.Join(dir, "short")
	vtest.WriteFile(t, short, []byte("host:1\n"))
	tests := []struct {
		opts verify.Options
		want string
	}{
		{verify.Options{"file": {bad}}, bad + ":2:"},
		{verify.Options{"file": {short}}, short + ":1: want HOST:PORT spki:BASE64"},
		{verify.Options{"file": {filepath.Join(dir, "nope")}, "mode": {"strict"}}, "does not exist"},
		{verify.Options{"mode": {"ask"}}, `mode="ask"`},
		{verify.Options{"file": {dir}}, "is a directory"},
		{verify.Options{"port": {"1"}}, `"port"`},
	}
	for _, tt := range tests {
		_, err := newTofu(t, tt.opts)
		if !errors.Is(err, verify.ErrBadOption) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Configure(%v) = %v, want a bad-option error mentioning %q", tt.opts, err, tt.want)
		}
	}
}

func TestDefaultFile(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	v, err := newTofu(t, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if verdict := vtest.Handshake(t, v, req(vtest.New(t, vtest.Spec{CN: "x"}), "127.0.0.1:1")); !verdict.Allow {
		t.Fatal(verdict.Reason)
	}
	if _, err := os.Stat(filepath.Join(home, ".tlspin", "known_pins")); err != nil {
		t.Fatalf("default file not written: %v", err)
	}
}

// TestConcurrentFirstUse runs many connections at once, to the same new
// peer and to distinct ones, through two verifiers sharing a file (two
// processes' worth): each peer is recorded once, nothing is lost, and
// the same peer is never rejected.
func TestConcurrentFirstUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known")
	v1, err := newTofu(t, verify.Options{"file": {path}})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := newTofu(t, verify.Options{"file": {path}})
	if err != nil {
		t.Fatal(err)
	}
	shared := vtest.New(t, vtest.Spec{CN: "shared"})
	const n = 16
	own := make([]*vtest.Cert, n)
	for i := range own {
		own[i] = vtest.New(t, vtest.Spec{CN: fmt.Sprint(i)})
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4*n)
	for i := range n {
		for _, v := range []*Verifier{v1, v2} {
			wg.Add(2)
			go func() {
				defer wg.Done()
				if verdict := vtest.Handshake(t, v, req(shared, "127.0.0.1:443")); !verdict.Allow {
					errs <- "shared: " + verdict.Reason
				}
			}()
			go func() {
				defer wg.Done()
				if verdict := vtest.Handshake(t, v, req(own[i], fmt.Sprintf("127.0.0.1:%d", 1000+i))); !verdict.Allow {
					errs <- verdict.Reason
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	db, err := readKnown(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(db.byKey["127.0.0.1:443"]); got != 1 {
		t.Errorf("shared peer recorded %d times, want once", got)
	}
	for i := range n {
		if got := len(db.byKey[fmt.Sprintf("127.0.0.1:%d", 1000+i)]); got != 1 {
			t.Errorf("peer %d recorded %d times, want once", i, got)
		}
	}
}

func TestBadEditKeepsPins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known")
	v, err := newTofu(t, verify.Options{"file": {path}})
	if err != nil {
		t.Fatal(err)
	}
	a := vtest.New(t, vtest.Spec{CN: "a"})
	if !vtest.Handshake(t, v, req(a, "127.0.0.1:1")).Allow {
		t.Fatal("first use rejected")
	}
	data, _ := os.ReadFile(path)
	vtest.WriteFile(t, path, append(data, "garbage line here\n"...))
	b := vtest.New(t, vtest.Spec{CN: "b"})
	if verdict := vtest.Handshake(t, v, req(b, "127.0.0.1:1")); verdict.Allow || !strings.Contains(verdict.Reason, "HAS CHANGED") {
		t.Fatalf("after a bad edit: %+v, want the recorded pin still enforced", verdict)
	}
	if verdict := vtest.Handshake(t, v, req(b, "127.0.0.1:2")); verdict.Allow {
		t.Fatalf("recorded into a file that does not parse: %+v", verdict)
	}
}

// TestBadEditStillRevokes: the operator replaces a peer's compromised key
// by hand and mistypes another line. The edit is rejected, but the key it
// replaced must no longer be trusted, and the key it added waits until the
// file parses; a peer it left alone keeps its pin.
func TestBadEditStillRevokes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known")
	v, err := newTofu(t, verify.Options{"file": {path}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := v.PolicyChanges(ctx)
	old := vtest.New(t, vtest.Spec{CN: "a"})
	other := vtest.New(t, vtest.Spec{CN: "b"})
	for _, r := range []*verify.Request{req(old, "127.0.0.1:1"), req(other, "127.0.0.1:2")} {
		if !vtest.Handshake(t, v, r).Allow {
			t.Fatal("first use rejected")
		}
	}
	drain(changes)
	renewed := vtest.New(t, vtest.Spec{CN: "a"})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), old.Pin(t, pin.SPKI, pin.FormatBase64), renewed.Pin(t, pin.SPKI, pin.FormatBase64), 1)
	vtest.WriteFile(t, path, []byte(edited+"garbage line here\n"))
	for _, tc := range []struct {
		name string
		req  *verify.Request
		want bool
	}{
		{"replaced", req(old, "127.0.0.1:1"), false},
		{"added", req(renewed, "127.0.0.1:1"), false},
		{"left alone", req(other, "127.0.0.1:2"), true},
	} {
		if verdict := vtest.Handshake(t, v, tc.req); verdict.Allow != tc.want {
			t.Errorf("%s: %+v, want allowed %v", tc.name, verdict, tc.want)
		}
	}
	select {
	case c := <-changes:
		if !strings.Contains(c.Reason, "narrowed by an edit that does not parse") {
			t.Errorf("policy change %+v", c)
		}
	default:
		t.Error("the narrowing was not announced")
	}

	vtest.WriteFile(t, path, []byte(edited))
	if verdict := vtest.Handshake(t, v, req(renewed, "127.0.0.1:1")); !verdict.Allow {
		t.Fatalf("the new key rejected once the file parses: %+v", verdict)
	}
}

// TestEditAnnouncedWithoutAConnection: the operator removes a
// compromised peer's line while no new peer connects. The edit must be
// announced all the same, or a host would keep its cached verdicts and
// the peer's open connections, asked again only at a change, for as long
// as no one else connects.
func TestEditAnnouncedWithoutAConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known")
	v, err := newTofu(t, verify.Options{"file": {path}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := v.PolicyChanges(ctx)
	a := vtest.New(t, vtest.Spec{CN: "a"})
	if !vtest.Handshake(t, v, req(a, "127.0.0.1:1")).Allow {
		t.Fatal("first use rejected")
	}
	drain(changes)
	vtest.WriteFile(t, path, []byte("# a removed\n"))
	select {
	case c := <-changes:
		if !strings.Contains(c.Reason, "changed") {
			t.Fatalf("policy change %+v", c)
		}
	case <-time.After(5 * EditCheckEvery):
		t.Fatal("the edit was not announced")
	}
}

// TestNoCommitReservesNothing: the operator removes a server's line to
// accept its new key (as ssh-keygen -R), while a connection made with the
// old key is still open. The host asks about that connection again, with
// NoCommit; if the old key were then held as "being recorded", the new
// key would be refused for a minute.
func TestNoCommitReservesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known")
	v, err := newTofu(t, verify.Options{"file": {path}})
	if err != nil {
		t.Fatal(err)
	}
	old, renewed := vtest.New(t, vtest.Spec{CN: "s"}), vtest.New(t, vtest.Spec{CN: "s"})
	if !vtest.Handshake(t, v, req(old, "127.0.0.1:1")).Allow {
		t.Fatal("first use rejected")
	}
	vtest.WriteFile(t, path, []byte("# removed to accept the new key\n"))
	again := req(old, "127.0.0.1:1")
	again.NoCommit = true
	if verdict, err := v.Verify(context.Background(), again); err != nil || !verdict.Allow {
		t.Fatalf("the open connection asked again: %+v, %v; want allowed as a first use", verdict, err)
	}
	if verdict := vtest.Handshake(t, v, req(renewed, "127.0.0.1:1")); !verdict.Allow {
		t.Fatalf("the new key after the old one was asked about again: %+v, want recorded as a first use", verdict)
	}
}

// drain empties a channel of policy changes.
func drain(c <-chan verify.PolicyChange) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// TestRemovedByAnotherUser: another local user who can remove the pins
// file (a shared directory without the sticky bit) or rename a directory
// above it (theirs) would make every recorded peer new again, and a
// man-in-the-middle's key would be recorded as first use. A missing file
// counts as empty only where no other user could have removed it.
func TestRemovedByAnotherUser(t *testing.T) {
	const other = 54321
	tests := []struct {
		name   string
		setup  func(t *testing.T, root string) (path string, attack func())
		refuse string
	}{
		{"shared directory, not sticky", func(t *testing.T, root string) (string, func()) {
			d := filepath.Join(root, "shared")
			mkdir(t, d, 0o700)
			path := filepath.Join(d, "known_pins")
			return path, func() {
				if err := os.Chmod(d, 0o777); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			}
		}, "which every user may write to"},
		{"a directory above belongs to another user", func(t *testing.T, root string) (string, func()) {
			team := filepath.Join(root, "team")
			mkdir(t, team, 0o755)
			mkdir(t, filepath.Join(team, "me"), 0o700)
			path := filepath.Join(team, "me", "known_pins")
			return path, func() {
				if err := os.Lchown(team, other, -1); err != nil {
					t.Skipf("cannot give a directory to another user here: %v", err)
				}
				t.Cleanup(func() { os.Lchown(team, os.Geteuid(), -1) })
				if err := os.Rename(filepath.Join(team, "me"), filepath.Join(team, "me.old")); err != nil {
					t.Fatal(err)
				}
			}
		}, "which belongs to uid 54321"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, attack := tt.setup(t, t.TempDir())
			v, err := newTofu(t, verify.Options{"file": {path}})
			if err != nil {
				t.Fatal(err)
			}
			real := vtest.New(t, vtest.Spec{CN: "a"})
			mitm := vtest.New(t, vtest.Spec{CN: "a"})
			if !vtest.Handshake(t, v, req(real, "127.0.0.1:1")).Allow {
				t.Fatal("first use rejected")
			}
			attack()
			if verdict := vtest.Handshake(t, v, req(mitm, "127.0.0.1:1")); verdict.Allow {
				t.Fatalf("ATTACK: after the pins file was removed, the MITM was allowed: %+v", verdict)
			}
			_, err = newTofu(t, verify.Options{"file": {path}})
			if err == nil || !strings.Contains(err.Error(), tt.refuse) {
				t.Errorf("configured on a missing file another user could have removed: %v, want %q", err, tt.refuse)
			}
		})
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

// TestInvisibleCharactersInKeys: a pins file saved by an editor that
// starts it with a byte order mark, or a key pasted with a zero-width
// space, used to give a key that no peer's matches: its pin was silently
// not enforced, and a man-in-the-middle for that peer was allowed and
// recorded as a first use. A leading byte order mark is skipped; another
// invisible character in a key is a line that does not parse, so tofu
// refuses to start on it (and, running, records nothing until it is
// fixed) instead of treating the peer as new.
func TestInvisibleCharactersInKeys(t *testing.T) {
	real := vtest.New(t, vtest.Spec{CN: "real"})
	mitm := vtest.New(t, vtest.Spec{CN: "mitm"})
	d, _ := pin.Sum(pin.SPKI, real.DER())
	line := "127.0.0.1:1 " + entry(pin.Pin{Algo: pin.SPKI, Digest: d}) + "\n"
	tests := []struct {
		name, data string
		bad        bool // Configure refuses the file
	}{
		{"byte order mark", "\ufeff" + line, false},
		{"byte order mark before a comment", "\ufeff# pins\n" + line, false},
		{"CRLF", strings.ReplaceAll(line, "\n", "\r\n"), false},
		{"zero-width space in the key", "127.0.0.1\u200b:1" + line[len("127.0.0.1:1"):], true},
		{"byte order mark on a later line", "# pins\n\ufeff" + line, true},
		{"control character in the key", "127.0.0.1:1\x01" + line[len("127.0.0.1:1"):], true},
		{"not UTF-8", "127.0.0.1:1\xff" + line[len("127.0.0.1:1"):], true},
		{"Hangul filler in the key", "127.0.0.1:1\u3164" + line[len("127.0.0.1:1"):], true},
		{"blank Braille pattern in the key", "127.0.0.1\u2800:1" + line[len("127.0.0.1:1"):], true},
		{"variation selector in the key", "127.0.0.1:1\ufe0f" + line[len("127.0.0.1:1"):], true},
		{"combining grapheme joiner in the key", "127.0.0.1\u034f:1" + line[len("127.0.0.1:1"):], true},
		{"tag character in the key", "127.0.0.1:1\U000e0041" + line[len("127.0.0.1:1"):], true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "known")
			vtest.WriteFile(t, path, []byte(tt.data))
			v, err := newTofu(t, verify.Options{"file": {path}})
			if tt.bad {
				if err == nil || !strings.Contains(err.Error(), path+":") {
					t.Fatalf("Configure = %v, want the line refused", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if verdict := vtest.Handshake(t, v, req(mitm, "127.0.0.1:1")); verdict.Allow {
				t.Fatalf("ATTACK: another key allowed for a recorded peer: %+v", verdict)
			}
			if verdict := vtest.Handshake(t, v, req(real, "127.0.0.1:1")); !verdict.Allow {
				t.Fatalf("the recorded key rejected: %s", verdict.Reason)
			}
		})
	}
}

// TestKeysNoPeerHas: a line written by hand whose key no peer's key can
// be (a URL pasted for HOST:PORT, a port that is not a number or out of
// range, no host) is refused with its line and key. Such a pin was read
// and applied to no peer: the server it was meant for was taken as new,
// and whatever key it presented (a man-in-the-middle's) recorded.
func TestKeysNoPeerHas(t *testing.T) {
	real := vtest.New(t, vtest.Spec{CN: "real"})
	d, _ := pin.Sum(pin.SPKI, real.DER())
	p := " " + entry(pin.Pin{Algo: pin.SPKI, Digest: d}) + "\n"
	for _, tt := range []struct {
		key string
		bad bool
	}{
		{"https://example.com", true},
		{"example.com:htps", true},
		{"example.com:99999", true},
		{":443", true},
		{"example.com:443", false},
		{"example.com:https", false}, // a service name is its port
		{"example.com", false},       // no port: a unix socket's peer
		{"/run/a:b.sock", false},
		{"client@192.0.2.1", false},
		{"client@2001:db8::1", false},
		{"client@fe80::1%eth0", false},
		{"client@192.0.2.1:5000", true}, // as serve logs remote=; a client's key has no port
		{"client@[2001:db8::1]:5000", true},
		{"client@", true},
		{"unix:/run/x.sock", false}, // a unix target's, as Key makes it
		{"db:/run/x.sock", false},
		{"unix:@x", false},
		{"unix://run/x.sock", true},
	} {
		t.Run(tt.key, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "known")
			vtest.WriteFile(t, path, []byte("# pins\n"+tt.key+p))
			_, err := newTofu(t, verify.Options{"file": {path}})
			if !tt.bad {
				if err != nil {
					t.Fatalf("Configure = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), path+":2:") || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.key)) {
				t.Fatalf("Configure = %v, want line 2 and its key refused", err)
			}
			if _, _, err := AddPin(t.Context(), filepath.Join(t.TempDir(), "known"), tt.key, pin.Pin{Algo: pin.SPKI, Digest: d}, ""); err == nil {
				t.Errorf("AddPin(%q) accepted", tt.key)
			}
		})
	}
}

// TestChangeNamesTheRecordedPinAsTheFileHasIt: the warning for a changed
// key names the recorded pin as a line of the file has it, whatever form
// a line written by hand gave it in; it read "spki:sha256//...".
func TestChangeNamesTheRecordedPinAsTheFileHasIt(t *testing.T) {
	real := vtest.New(t, vtest.Spec{CN: "real"})
	mitm := vtest.New(t, vtest.Spec{CN: "mitm"})
	d, _ := pin.Sum(pin.SPKI, real.DER())
	path := filepath.Join(t.TempDir(), "known")
	vtest.WriteFile(t, path, []byte("127.0.0.1:1 sha256//"+base64.StdEncoding.EncodeToString(d)+"\n"))
	v, err := newTofu(t, verify.Options{"file": {path}})
	if err != nil {
		t.Fatal(err)
	}
	verdict := vtest.Handshake(t, v, req(mitm, "127.0.0.1:1"))
	if want := "records spki:" + base64.StdEncoding.EncodeToString(d) + "."; verdict.Allow || !strings.Contains(verdict.Reason, want) {
		t.Fatalf("verdict %+v, want a rejection saying %q", verdict, want)
	}
}

// TestCommitAfterAnotherKeyWasRecorded: a first use allowed here, whose
// commit comes after another process (or `known-pins add`) recorded
// another key for the same peer. The commit used to take the peer for
// known "whatever its key" and succeed without recording, so the host
// kept a connection to a server whose key is not the one recorded; it
// must fail, as a commit that finds the other key under the lock does. A
// commit for a peer recorded meanwhile with the same key succeeds.
func TestCommitAfterAnotherKeyWasRecorded(t *testing.T) {
	tests := []struct {
		name    string
		same    bool
		wantErr bool
	}{
		{"another key recorded meanwhile", false, true},
		{"the same key recorded meanwhile", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "known")
			here, err := newTofu(t, verify.Options{"file": {path}})
			if err != nil {
				t.Fatal(err)
			}
			there, err := newTofu(t, verify.Options{"file": {path}})
			if err != nil {
				t.Fatal(err)
			}
			mine := vtest.New(t, vtest.Spec{CN: "mine"})
			theirs := mine
			if !tt.same {
				theirs = vtest.New(t, vtest.Spec{CN: "theirs"})
			}
			r := req(mine, "127.0.0.1:1")
			if verdict := vtest.Verify(t, here, r); !verdict.Allow || !verdict.Commit {
				t.Fatalf("first use: %+v", verdict)
			}
			if verdict := vtest.Handshake(t, there, req(theirs, "127.0.0.1:1")); !verdict.Allow {
				t.Fatalf("the other process's first use: %+v", verdict)
			}
			_, err = here.Commit(context.Background(), r)
			if tt.wantErr && (err == nil || !strings.Contains(err.Error(), "HAS CHANGED")) {
				t.Fatalf("ATTACK: Commit = %v, want the key recorded meanwhile to reject this one", err)
			}
			if !tt.wantErr && err != nil {
				t.Fatalf("Commit: %v", err)
			}
		})
	}
}

// TestCommitOfASecondKeyWhileTheFirstIsPending: the host commits every
// member of a policy, including one that did not ask (with require any,
// another verifier allowed the peer). Verify rejects a second key for a
// peer while the first one seen waits to be recorded; Commit must decide
// the same, or it records the key Verify rejected, and the first key's
// own commit then fails as a changed key.
func TestCommitOfASecondKeyWhileTheFirstIsPending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known")
	v, err := newTofu(t, verify.Options{"file": {path}})
	if err != nil {
		t.Fatal(err)
	}
	first := req(vtest.New(t, vtest.Spec{CN: "first"}), "127.0.0.1:1")
	second := req(vtest.New(t, vtest.Spec{CN: "second"}), "127.0.0.1:1")
	if verdict := vtest.Verify(t, v, first); !verdict.Allow || !verdict.Commit {
		t.Fatalf("first key: %+v", verdict)
	}
	if verdict := vtest.Verify(t, v, second); verdict.Allow {
		t.Fatalf("second key while the first is pending: %+v", verdict)
	}
	if _, err := v.Commit(context.Background(), second); err == nil {
		t.Error("ATTACK: the commit of the second key, which Verify rejected, succeeded")
	}
	if _, err := v.Commit(context.Background(), first); err != nil {
		t.Errorf("the commit of the first key: %v", err)
	}
	db, err := readKnown(path)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := pin.Sum(pin.SPKI, first.Leaf())
	if recs := db.byKey["127.0.0.1:1"]; len(recs) != 1 || !recs[0].pin.Equal(d) {
		t.Errorf("recorded %+v, want the first key alone", recs)
	}
}

// TestPendingHoldsAMinuteAtMost is the attack of a peer that presents a
// key of its own and aborts each handshake before it would have to prove
// it holds the key, then tries again, to keep the peer's real key
// refused as "another key being recorded". The hold lasts a minute from
// the first time the key was seen, however often it is seen again.
func TestPendingHoldsAMinuteAtMost(t *testing.T) {
	for _, tt := range []struct {
		name    string
		retries []time.Duration // the attacker's verifies, after its first
		at      time.Duration   // when the real key comes
		allowed bool
	}{
		{"within the minute", nil, 30 * time.Second, false},
		{"after the minute", nil, 61 * time.Second, true},
		{"tried again within the minute", []time.Duration{20 * time.Second, 40 * time.Second, 59 * time.Second}, 61 * time.Second, true},
		{"tried again after the minute: a hold of its own", []time.Duration{60 * time.Second}, 90 * time.Second, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := newTofu(t, verify.Options{"file": {filepath.Join(t.TempDir(), "known")}})
			if err != nil {
				t.Fatal(err)
			}
			start := v.now()
			at := func(d time.Duration) { v.now = func() time.Time { return start.Add(d) } }
			attacker := req(vtest.New(t, vtest.Spec{CN: "a"}), "127.0.0.1:8443")
			for _, d := range append([]time.Duration{0}, tt.retries...) {
				at(d)
				if verdict := vtest.Verify(t, v, attacker); !verdict.Allow {
					t.Fatalf("the attacker's key at %s: %+v", d, verdict)
				}
			}
			at(tt.at)
			if verdict := vtest.Verify(t, v, req(vtest.New(t, vtest.Spec{CN: "a"}), "127.0.0.1:8443")); verdict.Allow != tt.allowed {
				t.Errorf("the real key at %s: allowed %v, want %v: %s", tt.at, verdict.Allow, tt.allowed, verdict.Reason)
			}
		})
	}
}

// TestUnreadableEditIsReadOnceReadable: the operator replaces a
// compromised peer's pin, and the file's next read fails for a while
// without the file changing after it (here a directory on its path is
// writable by every user for a moment, and the read refuses the file;
// a full descriptor table or an I/O error would do the same). The read
// that failed marked that version of the file as seen, so once it could
// be read again tofu never read it: the replaced, compromised key stayed
// trusted, and nothing could be recorded, until the next edit.
func TestUnreadableEditIsReadOnceReadable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pins")
	mkdir(t, dir, 0o700)
	path := filepath.Join(dir, "known")
	v, err := newTofu(t, verify.Options{"file": {path}})
	if err != nil {
		t.Fatal(err)
	}
	old := vtest.New(t, vtest.Spec{CN: "a"})
	renewed := vtest.New(t, vtest.Spec{CN: "a"})
	newcomer := vtest.New(t, vtest.Spec{CN: "c"})
	if !vtest.Handshake(t, v, req(old, "127.0.0.1:1")).Allow {
		t.Fatal("first use rejected")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), old.Pin(t, pin.SPKI, pin.FormatBase64), renewed.Pin(t, pin.SPKI, pin.FormatBase64), 1)
	vtest.WriteFile(t, path, []byte(edited))
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if verdict := vtest.Verify(t, v, req(newcomer, "127.0.0.1:3")); verdict.Allow {
		t.Fatalf("a first use recorded in a file others may write: %+v", verdict)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  *verify.Request
		want bool
	}{
		{"replaced key", req(old, "127.0.0.1:1"), false},
		{"new key", req(renewed, "127.0.0.1:1"), true},
		{"first use", req(newcomer, "127.0.0.1:3"), true},
	} {
		if verdict := vtest.Handshake(t, v, tc.req); verdict.Allow != tc.want {
			t.Errorf("%s, the file readable again: %+v, want allowed %v", tc.name, verdict, tc.want)
		}
	}
}

// TestEditInPlaceKeepingItsTime: the operator replaces a compromised
// key by writing the file over in place with a tool that keeps its
// modification time (cp -p, rsync -t --inplace, touch -r). A key's pin
// is always as long as another's, so the size stays too: tofu, which
// told versions apart by size, modification time and inode, never saw
// the edit, and the replaced key stayed trusted. The change time, which
// no tool can set, tells them apart.
func TestEditInPlaceKeepingItsTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known")
	v, err := newTofu(t, verify.Options{"file": {path}})
	if err != nil {
		t.Fatal(err)
	}
	old := vtest.New(t, vtest.Spec{CN: "a"})
	renewed := vtest.New(t, vtest.Spec{CN: "a"})
	if !vtest.Handshake(t, v, req(old, "127.0.0.1:1")).Allow {
		t.Fatal("first use rejected")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), old.Pin(t, pin.SPKI, pin.FormatBase64), renewed.Pin(t, pin.SPKI, pin.FormatBase64), 1)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(edited); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	if verdict := vtest.Handshake(t, v, req(old, "127.0.0.1:1")); verdict.Allow {
		t.Errorf("ATTACK: the replaced key is still trusted: %+v", verdict)
	}
	if verdict := vtest.Handshake(t, v, req(renewed, "127.0.0.1:1")); !verdict.Allow {
		t.Errorf("the new key is rejected: %+v", verdict)
	}
}

// TestInPlaceSaveCaughtHalfWritten: an editor that saves in place (nano;
// vim with backupcopy=yes) truncates the pins file, then writes it. A
// man-in-the-middle for a recorded server that connects in between is a
// first use against the empty file; its record, also made in between,
// replaced the file with one that holds the attacker's key alone, and the
// editor's write went to the file it had open, now unlinked. A record
// after an in-place write now waits until the file has been quiet, and
// decides on what the editor wrote.
func TestInPlaceSaveCaughtHalfWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known")
	v, err := newTofu(t, verify.Options{"file": {path}})
	if err != nil {
		t.Fatal(err)
	}
	v.settleFor = 2 * time.Second
	real := vtest.New(t, vtest.Spec{CN: "a"})
	mitm := vtest.New(t, vtest.Spec{CN: "a"})
	if !vtest.Handshake(t, v, req(real, "127.0.0.1:1")).Allow {
		t.Fatal("first use rejected")
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0) // the editor's save begins
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := req(mitm, "127.0.0.1:1")
	verdict := vtest.Verify(t, v, r)
	if !verdict.Allow || !verdict.Commit {
		// Rejected outright is as good: nothing to commit.
		return
	}
	committed := make(chan error, 1)
	go func() {
		_, err := v.Commit(context.Background(), r)
		committed <- err
	}()
	time.Sleep(50 * time.Millisecond) // the editor writing; no signal to wait for
	if _, err := f.Write(saved); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-committed; err == nil {
		t.Errorf("ATTACK: the man-in-the-middle met while the file was half written was recorded")
	}
	if got := vtest.Verify(t, v, req(real, "127.0.0.1:1")); !got.Allow {
		t.Errorf("the recorded server is rejected after the save: %+v", got)
	}
}

// TestEditDuringAnInPlaceSave: an edit of the pins file (tlspin
// known-pins add or remove) made while an editor that saves in place had
// emptied the file read it empty and replaced it, and the editor's write
// went to the file it had open: every other pin was lost, and their peers
// were new again. An edit now waits until the file has settled.
func TestEditDuringAnInPlaceSave(t *testing.T) {
	a := vtest.New(t, vtest.Spec{CN: "a"})
	b := vtest.New(t, vtest.Spec{CN: "b"})
	pa, _ := pin.Sum(pin.SPKI, a.DER())
	pb, _ := pin.Sum(pin.SPKI, b.DER())
	for _, tc := range []struct {
		name string
		edit func(*known) ([]byte, error)
		want []string // the keys left
	}{
		{"add", func(k *known) ([]byte, error) {
			data, _ := k.appendLine(line("b.example:443", pin.Pin{Algo: pin.SPKI, Digest: pb}))
			return data, nil
		}, []string{"a.example:443", "keep.example:443", "b.example:443"}},
		{"remove", func(k *known) ([]byte, error) {
			var out []byte
			for l := range bytes.Lines(k.data) {
				if !strings.HasPrefix(string(l), "a.example:443 ") {
					out = append(out, l...)
				}
			}
			return out, nil
		}, []string{"keep.example:443"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "known")
			saved := []byte(header + line("a.example:443", pin.Pin{Algo: pin.SPKI, Digest: pa}) + "\n" +
				line("keep.example:443", pin.Pin{Algo: pin.SPKI, Digest: pa}) + "\n")
			vtest.WriteFile(t, path, saved)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0) // the editor's save begins
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			edited := make(chan error, 1)
			go func() { edited <- editKnown(t.Context(), path, time.Second, tc.edit) }()
			time.Sleep(50 * time.Millisecond) // the editor writing; no signal to wait for
			if _, err := f.Write(saved); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-edited; err != nil {
				t.Fatal(err)
			}
			es, err := ReadPins(path)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range es {
				got = append(got, e.Key)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ATTACK: the pins left are %q, want %q: the edit read the file the editor had emptied", got, tc.want)
			}
		})
	}
}
