package allowlist

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/files"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
	"github.com/tlspin/tlspin/verifiers/internal/vtest"
)

func line(t *testing.T, c *vtest.Cert, algo pin.Algo, rest string) string {
	f := pin.FormatHex
	if algo == pin.SPKI {
		f = pin.FormatBase64
	}
	return string(algo) + ":" + c.Pin(t, algo, f) + rest + "\n"
}

// configured returns an allowlist verifier on a file holding content, with
// a channel that receives the outcome of every reload.
func configured(t *testing.T, content string, opts verify.Options) (*Verifier, string, chan error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pins.txt")
	vtest.WriteFile(t, path, []byte(content))
	v := New(nil)
	v.debounce = 10 * time.Millisecond
	reloads := make(chan error, 100)
	v.afterReload = func(err error) { reloads <- err }
	if opts == nil {
		opts = verify.Options{}
	}
	opts["file"] = []string{path}
	if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: opts}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, path, reloads
}

func allowed(t *testing.T, v verify.Verifier, chain [][]byte) (bool, string) {
	t.Helper()
	verdict := vtest.Verify(t, v, &verify.Request{PeerChain: chain})
	return verdict.Allow, verdict.Reason + verdict.Matched
}

func TestVerifyAlgosExpiryAndChain(t *testing.T) {
	ca := vtest.New(t, vtest.Spec{CN: "CA", IsCA: true})
	a := vtest.New(t, vtest.Spec{CN: "a"})
	aRenewed := a.Renew(t, nil)
	b := vtest.New(t, vtest.Spec{CN: "b"})
	c := vtest.New(t, vtest.Spec{CN: "c"})
	d := vtest.New(t, vtest.Spec{CN: "d"})
	old := vtest.New(t, vtest.Spec{CN: "old"})
	issued := vtest.New(t, vtest.Spec{CN: "issued", Issuer: ca})
	stranger := vtest.New(t, vtest.Spec{CN: "stranger"})
	content := "# test list\n" +
		line(t, a, pin.SPKI, " # a's key") +
		line(t, b, pin.SHA256, "") +
		line(t, c, pin.MD5, " expires=2999-01-01") +
		line(t, d, pin.SHA1, "") +
		line(t, old, pin.SPKI, " expires=2001-01-01") +
		line(t, ca, pin.SPKI, "")
	tests := []struct {
		name   string
		chain  string
		in     [][]byte
		allow  bool
		reason string
	}{
		{"spki", "leaf", vtest.Chain(a), true, "pins.txt:2 spki:"},
		{"spki survives renewal", "leaf", vtest.Chain(aRenewed), true, "pins.txt:2"},
		{"sha256", "leaf", vtest.Chain(b), true, "pins.txt:3 sha256:"},
		{"md5 not yet expired", "leaf", vtest.Chain(c), true, "pins.txt:4"},
		{"sha1", "leaf", vtest.Chain(d), true, "pins.txt:5"},
		{"expired", "leaf", vtest.Chain(old), false, "pins.txt:6: pin spki:" + old.Pin(t, pin.SPKI, pin.FormatBase64) + " expired on 2001-01-01"},
		{"not listed", "leaf", vtest.Chain(stranger), false, `"CN=stranger") is not listed in `},
		{"not listed shows the line to add", "leaf", vtest.Chain(stranger), false, "add this line to the file: spki:" + stranger.Pin(t, pin.SPKI, pin.FormatBase64)},
		{"leaf: CA listed does not count", "leaf", vtest.Chain(issued, ca), false, "not listed"},
		{"ca: CA listed", "ca", vtest.Chain(issued, ca), true, "pins.txt:7"},
		{"ca: leaf listed does not count", "ca", vtest.Chain(a, stranger), false, "chain=ca"},
		{"ca: leaf only", "ca", vtest.Chain(issued), false, "only its leaf"},
		{"any: CA listed", "any", vtest.Chain(issued, ca), true, "pins.txt:7"},
		{"any: leaf listed", "any", vtest.Chain(a, stranger), true, "pins.txt:2"},
		{"no certificate", "leaf", nil, false, "no certificate"},
		// Attacks: listed certificates appended to a leaf they did not issue.
		{"ca: forged, stranger's leaf carries the listed CA", "ca", vtest.Chain(stranger, ca), false, "chain does not lead from the leaf to the pinned certificate"},
		{"any: forged, stranger's leaf carries the listed CA", "any", vtest.Chain(stranger, ca), false, "chain does not lead from the leaf"},
		{"any: forged, stranger's leaf carries a listed leaf", "any", vtest.Chain(stranger, a), false, "chain does not lead from the leaf"},
	}
	verifiers := map[string]*Verifier{}
	for _, ch := range []string{"leaf", "ca", "any"} {
		v, _, _ := configured(t, content, verify.Options{"chain": {ch}})
		verifiers[ch] = v
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := allowed(t, verifiers[tt.chain], tt.in)
			if ok != tt.allow || !strings.Contains(why, tt.reason) {
				t.Errorf("allow = %v (%q), want %v mentioning %q", ok, why, tt.allow, tt.reason)
			}
		})
	}
}

func TestNeedsChain(t *testing.T) {
	for ch, want := range map[string]bool{"leaf": false, "any": true, "ca": true} {
		path := filepath.Join(t.TempDir(), "p")
		vtest.WriteFile(t, path, nil)
		v := New(nil)
		r, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{"file": {path}, "chain": {ch}}})
		if err != nil || r.NeedsChain != want {
			t.Errorf("chain=%s: NeedsChain = %v, %v; want %v", ch, r, err, want)
		}
		v.Close()
	}
}

// waitReload waits for the next reload whose outcome satisfies ok.
func waitReload(t *testing.T, reloads chan error, ok func(error) bool) error {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-reloads:
			if ok(err) {
				return err
			}
		case <-timeout:
			t.Fatal("no reload seen")
		}
	}
}

func TestReload(t *testing.T) {
	a := vtest.New(t, vtest.Spec{CN: "a"})
	b := vtest.New(t, vtest.Spec{CN: "b"})
	v, path, reloads := configured(t, line(t, a, pin.SPKI, ""), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := v.PolicyChanges(ctx)

	if ok, _ := allowed(t, v, vtest.Chain(b)); ok {
		t.Fatal("b allowed before being listed")
	}

	// An editor's save: write a temporary file, rename it over the list.
	tmp := path + ".swp"
	vtest.WriteFile(t, tmp, []byte(line(t, a, pin.SPKI, "")+line(t, b, pin.SPKI, "")))
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	waitReload(t, reloads, func(err error) bool { return err == nil && v.list.Load().Len() == 2 })
	if ok, why := allowed(t, v, vtest.Chain(b)); !ok {
		t.Fatalf("b rejected after the reload: %s", why)
	}
	select {
	case c := <-changes:
		if c.Epoch == 0 || !strings.Contains(c.Reason, "2 pins") {
			t.Errorf("policy change %+v", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no policy change announced")
	}

	// A bad new version is rejected; what it still lists stays. It is
	// written whole: a reload that saw the file still empty would rightly
	// drop a and b.
	if err := files.WriteAtomic(path, []byte(line(t, a, pin.SPKI, "")+line(t, b, pin.SPKI, "")+"md5:nothex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := waitReload(t, reloads, func(err error) bool { return err != nil })
	if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), path+":3:") {
		t.Fatalf("reload err = %v, want a syntax error at %s:3", err, path)
	}
	if ok, why := allowed(t, v, vtest.Chain(b)); !ok {
		t.Fatalf("b rejected after a bad edit that still lists it: %s", why)
	}

	// Removed: no pin is in force, and the change is announced. Keeping
	// the last list would keep trusting pins its owner meant to revoke.
	for len(changes) > 0 {
		<-changes
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	err = waitReload(t, reloads, func(err error) bool { return err != nil })
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reload err = %v, want the file missing", err)
	}
	if ok, why := allowed(t, v, vtest.Chain(a)); ok || !strings.Contains(why, path+" cannot be read (") {
		t.Fatalf("a after the file was removed: allowed = %v (%s); want a rejection saying the file cannot be read", ok, why)
	}
	select {
	case c := <-changes:
		if !strings.Contains(c.Reason, "no pin in force") {
			t.Errorf("policy change %+v, want it to say no pin is in force", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the removal was not announced")
	}

	// Written in place again, without b: b is rejected.
	vtest.WriteFile(t, path, []byte(line(t, a, pin.SPKI, "")))
	waitReload(t, reloads, func(err error) bool { return err == nil && v.list.Load().Len() == 1 })
	if ok, _ := allowed(t, v, vtest.Chain(b)); ok {
		t.Fatal("b still allowed after being removed from the list")
	}
}

func TestCloseStopsWatching(t *testing.T) {
	v, _, _ := configured(t, "", nil)
	done := v.done
	v.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("watcher still running after Close")
	}
	v.Close() // twice is fine
}

// TestDirectoryReplaced: `mv d d.old; mkdir d; write list` leaves the
// watch on d.old. The verifier must notice, warn, watch the new directory
// and enforce the new list: a pin removed there is no longer trusted.
// Deleting the file and writing a bad version warn every time.
func TestDirectoryReplaced(t *testing.T) {
	a := vtest.New(t, vtest.Spec{CN: "a"})
	b := vtest.New(t, vtest.Spec{CN: "b"})
	root := t.TempDir()
	dir := filepath.Join(root, "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pins.txt")
	vtest.WriteFile(t, path, []byte(line(t, a, pin.SPKI, "")+line(t, b, pin.SPKI, "")))
	var logs syncbuf.Buffer
	v := New(hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn}))
	v.debounce, v.pollEvery = 10*time.Millisecond, 20*time.Millisecond
	if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{"file": {path}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	if ok, why := allowed(t, v, vtest.Chain(b)); !ok {
		t.Fatal(why)
	}

	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	vtest.WriteFile(t, path, []byte(line(t, a, pin.SPKI, "")))
	// The watcher may read the new file while it is still empty, which
	// also rejects b: wait for the list that trusts a alone.
	if !wait.Until(10*time.Second, func() bool {
		okA, _ := allowed(t, v, vtest.Chain(a))
		okB, _ := allowed(t, v, vtest.Chain(b))
		return okA && !okB
	}) {
		_, whyA := allowed(t, v, vtest.Chain(a))
		_, whyB := allowed(t, v, vtest.Chain(b))
		t.Fatalf("the list in the new directory (a only) is not in force: a: %s; b: %s", whyA, whyB)
	}
	if !strings.Contains(logs.String(), "watch on it is lost") {
		t.Errorf("no warning that the watch was lost:\n%s", logs.String())
	}

	// Later edits in the new directory are still seen.
	vtest.WriteFile(t, path, []byte(line(t, a, pin.SPKI, "")+line(t, b, pin.SPKI, "")))
	if !wait.Until(10*time.Second, func() bool { ok, _ := allowed(t, v, vtest.Chain(b)); return ok }) {
		t.Fatal("an edit after the directory was replaced was not seen")
	}
	// Written whole: a file seen while still empty would be a good (if
	// empty) list.
	write := func(content string) func() {
		return func() {
			if err := files.WriteAtomic(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	both := line(t, a, pin.SPKI, "") + line(t, b, pin.SPKI, "")
	for i, tc := range []struct {
		change func()
		warns  bool
		allowB bool
	}{
		{func() { os.Remove(path) }, true, false},
		{write(both), false, true},
		{write(both + "md5:nothex\n"), true, true}, // still lists b
		{func() { os.Remove(path) }, true, false},
	} {
		before := strings.Count(logs.String(), "[WARN]")
		tc.change()
		if !wait.Until(10*time.Second, func() bool { ok, _ := allowed(t, v, vtest.Chain(b)); return ok == tc.allowB }) {
			_, why := allowed(t, v, vtest.Chain(b))
			t.Fatalf("change %d: b allowed = %v, want %v: %s", i, !tc.allowB, tc.allowB, why)
		}
		if tc.warns && !wait.Until(10*time.Second, func() bool { return strings.Count(logs.String(), "[WARN]") > before }) {
			t.Fatalf("change %d: no warning:\n%s", i, logs.String())
		}
	}
}

// CheckValues refuses what Configure refuses of the options and the
// file's whereabouts, without reading the file, keeping or logging
// anything; what is in the file is Configure's to judge.
func TestCheckValues(t *testing.T) {
	dir := t.TempDir()
	good, garbage := filepath.Join(dir, "good"), filepath.Join(dir, "garbage")
	if err := os.WriteFile(good, []byte("sha256:"+strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(garbage, []byte("not a pin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Larger than a check reads: only the verifier judges what is in it.
	bigGarbage := filepath.Join(dir, "big-garbage")
	if err := os.WriteFile(bigGarbage, []byte(strings.Repeat("# a comment\n", files.CheckedSize/12)+"not a pin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		opts       verify.Options
		checkSays  string // "" when CheckValues takes the options
		configSays string // "" when Configure does
	}{
		{"a good file", verify.Options{"file": {good}, "chain": {"any"}}, "", ""},
		{"what is in a small file", verify.Options{"file": {garbage}}, `garbage:1: "not": want ALGO:VALUE`, `garbage:1: "not": want ALGO:VALUE`},
		{"what is in a large file", verify.Options{"file": {bigGarbage}}, "", "want ALGO:VALUE"},
		{"a missing file", verify.Options{"file": {filepath.Join(dir, "none")}}, "no such file", "no such file"},
		{"a directory", verify.Options{"file": {dir}}, "is a directory", "is a directory"},
		{"a bad chain", verify.Options{"file": {good}, "chain": {"root"}}, `option chain="root"`, `option chain="root"`},
		{"no file", verify.Options{}, `option "file"`, `option "file"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncbuf.Buffer
			v := New(hclog.New(&hclog.LoggerOptions{Output: &logs}))
			defer v.Close()
			err := v.CheckValues(tt.opts)
			if tt.checkSays == "" && err != nil || tt.checkSays != "" && (!errors.Is(err, verify.ErrBadOption) || !strings.Contains(err.Error(), tt.checkSays)) {
				t.Errorf("CheckValues = %v; want %q", err, tt.checkSays)
			}
			if v.list.Load() != nil || logs.String() != "" {
				t.Errorf("CheckValues kept a list (%v) or logged %q", v.list.Load() != nil, logs.String())
			}
			_, err = v.Configure(context.Background(), &verify.ConfigureRequest{Options: tt.opts})
			if tt.configSays == "" && err != nil || tt.configSays != "" && (!errors.Is(err, verify.ErrBadOption) || !strings.Contains(err.Error(), tt.configSays)) {
				t.Errorf("Configure = %v; want %q", err, tt.configSays)
			}
		})
	}
}

// warnedAtLoad loads an allowlist of content and returns what it warned
// of, and the file's path.
func warnedAtLoad(t *testing.T, content string) (warnings, path string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "pins.txt")
	vtest.WriteFile(t, path, []byte(content))
	var logs syncbuf.Buffer
	v := New(hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn}))
	if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{"file": {path}}}); err != nil {
		t.Fatal(err)
	}
	v.Close()
	return logs.String(), path
}

// TestWarnsOfWeakPins: a list with MD5 or SHA-1 pins is loaded with a
// warning that says which, as md5pin warns; one without is not.
func TestWarnsOfWeakPins(t *testing.T) {
	c := vtest.New(t, vtest.Spec{CN: "c"})
	for _, tt := range []struct {
		name  string
		algos []pin.Algo
		want  string // "" for no warning
	}{
		{"sha256 and spki", []pin.Algo{pin.SHA256, pin.SPKI}, ""},
		{"md5", []pin.Algo{pin.MD5, pin.SPKI}, "has MD5 pins, which are weak"},
		{"md5 and sha1", []pin.Algo{pin.SHA1, pin.MD5}, "has MD5 and SHA1 pins, which are weak"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var content string
			for _, a := range tt.algos {
				content += line(t, c, a, "")
			}
			got, _ := warnedAtLoad(t, content)
			if tt.want == "" && strings.Contains(got, "weak") || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("warnings %q, want %q", got, tt.want)
			}
		})
	}
}

// TestWarnsOfExpiredPins: a list loaded with entries already past their
// expiry says which lines, as spkipin warns of an expired pin; one without
// says nothing of it.
func TestWarnsOfExpiredPins(t *testing.T) {
	var certs []*vtest.Cert
	for i := range 7 {
		certs = append(certs, vtest.New(t, vtest.Spec{CN: fmt.Sprint("c", i)}))
	}
	for _, tt := range []struct {
		name    string
		expired int
		want    string // "" for no warning
	}{
		{"none", 0, ""},
		{"one", 1, "has 1 pin past their expiry, which reject their peers: FILE:2"},
		{"seven", 7, "has 7 pins past their expiry, which reject their peers: FILE:2, FILE:3, FILE:4, FILE:5, FILE:6, and 2 more"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			content := "# list\n"
			for i, c := range certs {
				expires := " expires=2100-01-01"
				if i < tt.expired {
					expires = " expires=2001-01-01"
				}
				content += line(t, c, pin.SPKI, expires)
			}
			got, path := warnedAtLoad(t, content)
			want := strings.ReplaceAll(tt.want, "FILE", path)
			if tt.want == "" && strings.Contains(got, "expiry") || tt.want != "" && !strings.Contains(got, want) {
				t.Fatalf("warnings %q, want %q", got, want)
			}
		})
	}
}

// TestBadEditStillRevokes: an operator removes a compromised pin and, in
// the same edit, mistypes another line. The bad version is rejected, but
// the pin it removed must no longer be trusted, nor may a pin it added be
// trusted before the file parses, nor an expiry it brought forward be
// ignored. What it still lists on good lines stays in force, and the
// narrowing is announced so that cached verdicts go.
func TestBadEditStillRevokes(t *testing.T) {
	a := vtest.New(t, vtest.Spec{CN: "a"})
	b := vtest.New(t, vtest.Spec{CN: "b"})
	c := vtest.New(t, vtest.Spec{CN: "c"})
	d := vtest.New(t, vtest.Spec{CN: "d"})
	good := line(t, a, pin.SPKI, "") + line(t, b, pin.SPKI, "") + line(t, d, pin.SPKI, "")
	v, path, reloads := configured(t, good, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := v.PolicyChanges(ctx)

	bad := line(t, a, pin.SPKI, "") + // kept
		"spki:typo\n" + // the mistake
		line(t, c, pin.SPKI, "") + // added: not trusted until the file parses
		line(t, d, pin.SPKI, " expires=2001-01-01") // brought forward: holds
	// b's line is gone: revoked.
	if err := files.WriteAtomic(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	err := waitReload(t, reloads, func(err error) bool { return err != nil })
	if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), path+":2:") {
		t.Fatalf("reload err = %v, want a syntax error at %s:2", err, path)
	}
	for _, tc := range []struct {
		name string
		cert *vtest.Cert
		want bool
	}{
		{"kept", a, true},
		{"removed", b, false},
		{"added", c, false},
		{"expired", d, false},
	} {
		if ok, why := allowed(t, v, vtest.Chain(tc.cert)); ok != tc.want {
			t.Errorf("%s: allowed = %v, want %v (%s)", tc.name, ok, tc.want, why)
		}
	}
	// The added pin's rejection says why, not "add this line".
	if _, why := allowed(t, v, vtest.Chain(c)); !strings.Contains(why, path+" does not parse ("+path+":2:") || strings.Contains(why, "add this line") {
		t.Errorf("c's rejection: %s", why)
	}
	select {
	case ch := <-changes:
		if !strings.Contains(ch.Reason, "2 pins in force") { // a, and d expired
			t.Errorf("policy change %+v, want it to say what is kept", ch)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the narrowed list was not announced")
	}

	// Undone: the last good file, byte for byte, is in force again.
	if err := files.WriteAtomic(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	waitReload(t, reloads, func(err error) bool { return err == nil && v.list.Load().Len() == 3 })
	if ok, why := allowed(t, v, vtest.Chain(b)); !ok {
		t.Fatalf("b rejected once the last good file is back: %s", why)
	}

	// Fixed: the whole new version is in force, c included.
	fixed := line(t, a, pin.SPKI, "") + line(t, c, pin.SPKI, "")
	if err := files.WriteAtomic(path, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	waitReload(t, reloads, func(err error) bool { return err == nil && v.list.Load().Len() == 2 })
	if ok, why := allowed(t, v, vtest.Chain(c)); !ok {
		t.Fatalf("c rejected once the file parses: %s", why)
	}
}

// TestOtherFilesInTheDirectory: creating, renaming and removing other
// files in the list's directory (an editor's temporary files, say) is not
// the directory being replaced, and is not warned about.
func TestOtherFilesInTheDirectory(t *testing.T) {
	a := vtest.New(t, vtest.Spec{CN: "a"})
	dir := t.TempDir()
	path := filepath.Join(dir, "pins.txt")
	vtest.WriteFile(t, path, []byte(line(t, a, pin.SPKI, "")))
	var logs syncbuf.Buffer
	v := New(hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn}))
	v.debounce, v.pollEvery = 10*time.Millisecond, 10*time.Millisecond
	polls := make(chan error, 100)
	v.afterReload = func(err error) { polls <- err }
	if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{"file": {path}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	for i := range 5 {
		junk := filepath.Join(dir, fmt.Sprintf("junk%d", i))
		vtest.WriteFile(t, junk, []byte("x"))
		if err := os.Rename(junk, junk+".old"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * v.pollEvery) // let the poll see the directory change; there is no event to wait for
	}
	// A real edit afterwards is still seen, which also means the polls ran.
	vtest.WriteFile(t, path, []byte(line(t, a, pin.SPKI, " # edited")))
	waitReload(t, polls, func(err error) bool { return err == nil })
	if strings.Contains(logs.String(), "watch on it is lost") {
		t.Errorf("warned that the directory was replaced:\n%s", logs.String())
	}
}

// TestUnwatchableDirectoryIsPolled: where the list's directory cannot be
// watched (one this user may enter but not list, or no inotify instance
// left), edits are still seen, by the poll: removing a pin takes effect,
// and so do the file's removal and its return unchanged.
func TestUnwatchableDirectoryIsPolled(t *testing.T) {
	a := vtest.New(t, vtest.Spec{CN: "a"})
	b := vtest.New(t, vtest.Spec{CN: "b"})
	path := filepath.Join(t.TempDir(), "pins.txt")
	both := line(t, a, pin.SPKI, "") + line(t, b, pin.SPKI, "")
	vtest.WriteFile(t, path, []byte(both))
	var logs syncbuf.Buffer
	v := New(hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn}))
	v.debounce, v.pollEvery = 10*time.Millisecond, 20*time.Millisecond
	v.watchDir = func(*fsnotify.Watcher, string) error { return fs.ErrPermission }
	if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{"file": {path}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	if !strings.Contains(logs.String(), "checking "+path+" every 20ms instead") {
		t.Errorf("no warning that the file is polled:\n%s", logs.String())
	}
	for i, tc := range []struct {
		change func()
		allowB bool
	}{
		{func() { vtest.WriteFile(t, path, []byte(line(t, a, pin.SPKI, ""))) }, false}, // b revoked
		{func() { vtest.WriteFile(t, path, []byte(both)) }, true},
		{func() { os.Remove(path) }, false},
		{func() { vtest.WriteFile(t, path, []byte(both)) }, true}, // the last good version again
	} {
		tc.change()
		if !wait.Until(10*time.Second, func() bool { ok, _ := allowed(t, v, vtest.Chain(b)); return ok == tc.allowB }) {
			_, why := allowed(t, v, vtest.Chain(b))
			t.Fatalf("change %d: b allowed = %v, want %v: %s", i, !tc.allowB, tc.allowB, why)
		}
	}
}

// TestEditWhileConfiguring: an edit that lands after Configure read the
// list and before its watch started (a list of many pins takes a while
// to parse) is seen, and what it removed is no longer trusted. The watch
// took the file as it was when it started for the version in force, so
// neither an event nor the poll told it of the edit, and the removed pin
// stayed trusted until the next one.
func TestEditWhileConfiguring(t *testing.T) {
	a := vtest.New(t, vtest.Spec{CN: "a"})
	b := vtest.New(t, vtest.Spec{CN: "b"})
	path := filepath.Join(t.TempDir(), "pins.txt")
	vtest.WriteFile(t, path, []byte(line(t, a, pin.SPKI, "")+line(t, b, pin.SPKI, "")))
	v := New(nil)
	v.debounce, v.pollEvery = 10*time.Millisecond, 20*time.Millisecond
	reloads := make(chan error, 100)
	v.afterReload = func(err error) { reloads <- err }
	v.readFile = func(p string) ([]byte, error) {
		data, err := files.ReadTrusted(p)
		v.readFile = files.ReadTrusted
		// b revoked by an editor's save, just after the read.
		tmp := p + ".new"
		vtest.WriteFile(t, tmp, []byte(line(t, a, pin.SPKI, "")))
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
		return data, err
	}
	if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{"file": {path}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	waitReload(t, reloads, func(err error) bool { return err == nil })
	if ok, why := allowed(t, v, vtest.Chain(b)); ok {
		t.Fatalf("b, which the edit removed, is still allowed: %s", why)
	}
	if ok, why := allowed(t, v, vtest.Chain(a)); !ok {
		t.Fatal(why)
	}
}

// TestMadeWritableByOthers: a list that becomes writable by every user,
// or whose directory does, while tlspin runs, trusts nothing from then on
// (the next read would refuse it), with nothing written to it: a change of
// mode alone is seen, as an edit is, by the watch or the poll.
func TestMadeWritableByOthers(t *testing.T) {
	a := vtest.New(t, vtest.Spec{CN: "a"})
	for _, tt := range []struct {
		name   string
		change func(t *testing.T, path string)
		says   string
	}{
		{"the file", func(t *testing.T, path string) {
			if err := os.Chmod(path, 0o646); err != nil {
				t.Fatal(err)
			}
		}, "may be written by every user"},
		{"its directory", func(t *testing.T, path string) {
			dir := filepath.Dir(path)
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o700) })
		}, "which every user may write to"},
		{"its directory, given to another user", func(t *testing.T, path string) {
			if err := os.Lchown(filepath.Dir(path), 54321, -1); err != nil {
				t.Skipf("cannot give a directory to another user here: %v", err)
			}
		}, "which belongs to uid 54321"},
		{"a directory further up", func(t *testing.T, path string) {
			up := filepath.Dir(filepath.Dir(path))
			if err := os.Chmod(up, 0o777); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(up, 0o700) })
		}, "which every user may write to"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, path, _ := configured(t, line(t, a, pin.SPKI, ""), nil)
			v.Close() // watched again below with a quick poll
			v.pollEvery = 20 * time.Millisecond
			v.watch(statID(path))
			if ok, why := allowed(t, v, vtest.Chain(a)); !ok {
				t.Fatal(why)
			}
			tt.change(t, path)
			if !wait.Until(10*time.Second, func() bool { ok, _ := allowed(t, v, vtest.Chain(a)); return !ok }) {
				t.Fatal("a still allowed by a list others may now write")
			}
			if _, why := allowed(t, v, vtest.Chain(a)); !strings.Contains(why, tt.says) {
				t.Errorf("rejection %q, want it to say %q", why, tt.says)
			}
		})
	}
}

// TestReloadNotHeldOffByOthersEvents: where every event in the list's
// directory counts (the list is a symbolic link), another user who keeps
// making files there must not hold a reload off for ever: a revocation
// takes effect within a bounded time.
func TestReloadNotHeldOffByOthersEvents(t *testing.T) {
	a := vtest.New(t, vtest.Spec{CN: "a"})
	b := vtest.New(t, vtest.Spec{CN: "b"})
	dir := t.TempDir()
	data := filepath.Join(dir, "data.txt")
	vtest.WriteFile(t, data, []byte(line(t, a, pin.SPKI, "")+line(t, b, pin.SPKI, "")))
	path := filepath.Join(dir, "pins.txt")
	if err := os.Symlink("data.txt", path); err != nil {
		t.Fatal(err)
	}
	v := New(nil)
	v.debounce, v.pollEvery = 50*time.Millisecond, time.Hour // the events alone
	if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{"file": {path}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // another user's files, faster than the debounce
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("noise%d", i%5)), []byte("x"), 0o600)
		}
	}()
	defer func() { close(stop); <-done }()
	time.Sleep(100 * time.Millisecond) // the noise under way; nothing to wait for
	vtest.WriteFile(t, data, []byte(line(t, a, pin.SPKI, "")))
	if !wait.Until(5*time.Second, func() bool { ok, _ := allowed(t, v, vtest.Chain(b)); return !ok }) {
		t.Fatal("b still allowed 5 s after its revocation, while another user's events went on")
	}
}

// TestPolledEditInPlaceKeepingItsTime: where the directory cannot be
// watched, the poll alone sees edits. A pin revoked by writing the list
// over in place with a tool that keeps its modification time (cp -p,
// rsync -t --inplace, touch -r), another pin of the same length in its
// place, changed neither the size, the modification time nor the inode
// the poll compared: the revoked pin stayed trusted until the next edit.
func TestPolledEditInPlaceKeepingItsTime(t *testing.T) {
	a := vtest.New(t, vtest.Spec{CN: "a"})
	b := vtest.New(t, vtest.Spec{CN: "b"})
	c := vtest.New(t, vtest.Spec{CN: "c"})
	path := filepath.Join(t.TempDir(), "pins.txt")
	vtest.WriteFile(t, path, []byte(line(t, a, pin.SPKI, "")+line(t, b, pin.SPKI, "")))
	v := New(nil)
	v.debounce, v.pollEvery = 10*time.Millisecond, 20*time.Millisecond
	v.watchDir = func(*fsnotify.Watcher, string) error { return fs.ErrPermission }
	if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{"file": {path}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(line(t, a, pin.SPKI, "") + line(t, c, pin.SPKI, "")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	if !wait.Until(5*time.Second, func() bool { ok, _ := allowed(t, v, vtest.Chain(b)); return !ok }) {
		_, why := allowed(t, v, vtest.Chain(b))
		t.Fatalf("ATTACK: the revoked pin is still trusted 5 s after the edit: %s", why)
	}
	if ok, why := allowed(t, v, vtest.Chain(c)); !ok {
		t.Errorf("the pin added is not trusted: %s", why)
	}
}

// TestHalfWrittenLineIsNotTaken: a list written in place (truncated, then
// written) and read while its writer paused between a pin and its
// expires= gave that pin no expiry, trusting a peer whose pin had expired.
// A last line without its newline, in a file changed less than settleFor
// ago, waits; one the file keeps without a newline is read once settled.
func TestHalfWrittenLineIsNotTaken(t *testing.T) {
	a := vtest.New(t, vtest.Spec{CN: "a"})
	old := vtest.New(t, vtest.Spec{CN: "expired"})
	b := vtest.New(t, vtest.Spec{CN: "b"})
	whole := line(t, a, pin.SPKI, "") + line(t, old, pin.SPKI, " expires=2020-01-01")
	v, path, reloads := configured(t, whole, nil)
	if ok, why := allowed(t, v, vtest.Chain(old)); ok {
		t.Fatalf("the expired pin is trusted at start: %s", why)
	}

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cut := strings.TrimSuffix(line(t, a, pin.SPKI, "")+line(t, old, pin.SPKI, ""), "\n")
	if _, err := f.WriteString(cut); err != nil {
		t.Fatal(err)
	}
	// The reload of the half-written version: taken (before), or put off.
	waitReload(t, reloads, func(err error) bool {
		return errors.As(err, new(*unsettledError)) || err == nil && v.hash == sha256.Sum256([]byte(cut))
	})
	if ok, why := allowed(t, v, vtest.Chain(old)); ok {
		t.Fatalf("ATTACK: the expired pin is trusted while its line is half-written: %s", why)
	}
	if _, err := f.WriteString(strings.TrimPrefix(whole, cut)); err != nil {
		t.Fatal(err)
	}
	waitReload(t, reloads, func(err error) bool { return err == nil && v.hash == sha256.Sum256([]byte(whole)) })
	if ok, why := allowed(t, v, vtest.Chain(old)); ok {
		t.Fatalf("the expired pin is trusted once its line is whole: %s", why)
	}

	// A file that ends without a newline is read once it has settled.
	if _, err := f.WriteString(strings.TrimSuffix(line(t, b, pin.SPKI, ""), "\n")); err != nil {
		t.Fatal(err)
	}
	waitReload(t, reloads, func(err error) bool { return err == nil && v.list.Load().Len() == 3 })
	if ok, why := allowed(t, v, vtest.Chain(b)); !ok {
		t.Fatalf("the last line, settled without its newline, is not trusted: %s", why)
	}
}

// TestConfigureWaitsForAHalfWrittenLine: Configure reading the list while
// its writer paused between a pin and its expires= took that pin with no
// expiry, until the watch saw the rest.
func TestConfigureWaitsForAHalfWrittenLine(t *testing.T) {
	a := vtest.New(t, vtest.Spec{CN: "a"})
	old := vtest.New(t, vtest.Spec{CN: "expired"})
	whole := line(t, a, pin.SPKI, "") + line(t, old, pin.SPKI, " expires=2020-01-01")
	cut := strings.TrimSuffix(line(t, a, pin.SPKI, "")+line(t, old, pin.SPKI, ""), "\n")
	path := filepath.Join(t.TempDir(), "pins.txt")
	vtest.WriteFile(t, path, []byte(cut))
	v := New(nil)
	reads := 0
	v.readFile = func(path string) ([]byte, error) {
		data, err := files.ReadTrusted(path)
		if reads++; reads == 1 { // the writer goes on once the file was read
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Error(err)
				return data, err
			}
			defer f.Close()
			if _, err := f.WriteString(strings.TrimPrefix(whole, cut)); err != nil {
				t.Error(err)
			}
		}
		return data, err
	}
	if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{"file": {path}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	if ok, why := allowed(t, v, vtest.Chain(old)); ok {
		t.Fatalf("ATTACK: the expired pin, half-written when the list was read, is trusted: %s", why)
	}
	if ok, why := allowed(t, v, vtest.Chain(a)); !ok {
		t.Fatalf("a is not trusted: %s", why)
	}
}

// TestFileThatKeepsChangingIsRead: a list that keeps changing with no
// newline at its end is read in the end, not put off for ever.
func TestFileThatKeepsChangingIsRead(t *testing.T) {
	a := vtest.New(t, vtest.Spec{CN: "a"})
	b := vtest.New(t, vtest.Spec{CN: "b"})
	path := filepath.Join(t.TempDir(), "pins.txt")
	vtest.WriteFile(t, path, []byte(line(t, a, pin.SPKI, "")))
	v := New(nil)
	v.debounce, v.settleFor = 10*time.Millisecond, 300*time.Millisecond
	reloads := make(chan error, 1000)
	v.afterReload = func(err error) { reloads <- err }
	if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{"file": {path}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })

	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unended := []byte(line(t, a, pin.SPKI, "") + strings.TrimSuffix(line(t, b, pin.SPKI, ""), "\n"))
	done := make(chan struct{})
	writing := make(chan struct{})
	go func() { // the same bytes, again and again: only the change time moves
		defer close(writing)
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
			if _, err := f.WriteAt(unended, 0); err != nil {
				t.Error(err)
				return
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	defer func() { close(done); <-writing }()
	waitReload(t, reloads, func(err error) bool { return err == nil && v.list.Load().Len() == 2 })
	select {
	case <-writing:
		t.Fatal("the list was read only once its writer had stopped")
	default:
	}
}
