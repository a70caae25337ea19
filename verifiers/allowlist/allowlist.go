// Package allowlist accepts a peer whose certificate is listed in a file of
// pins, one a line:
//
//	ALGO:VALUE [expires=YYYY-MM-DD] [# comment]
//
// ALGO is md5, sha1 or sha256 (hashes of the certificate's DER) or spki
// (SHA-256 of its SubjectPublicKeyInfo, as curl, OkHttp and HPKP pin);
// VALUE is hex (colons optional) or base64. Note that `sha256:` here is the
// certificate hash, not ghostunnel's SPKI meaning: write spki: for a key pin.
//
// The file's directory is watched (fsnotify), so that an editor's
// write-to-temporary-and-rename is seen, and the list is reloaded on
// change. A bad new version is rejected with `FILE:LINE: what is wrong` in
// the log; of the last good list, what it still lists on lines that parse
// stays in force (List.Keep), so that a typo cannot keep a pin trusted that
// the same edit removed. A bad file at start is a Configure error. A
// version whose last line has no newline, read less than half a second
// after the file changed, may be a writer's pause in that line (a pin cut
// before its expires=): it is read again once the file has settled. Every
// change of what is trusted is announced as a verify.PolicyChange.
package allowlist

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/files"
	"github.com/tlspin/tlspin/verifiers/internal/notify"
	"github.com/tlspin/tlspin/verifiers/pinverifier"
)

// Name is the verifier's registered name.
const Name = "allowlist"

// maxCache bounds how long the host may reuse an allow verdict; reloads
// are announced, so this is only a backstop.
const maxCache = time.Minute

// debounce is how long the file must stay quiet before it is reloaded, so
// that an editor's several writes are read once.
const debounce = 100 * time.Millisecond

// settleFor is how long a file whose last line has no newline must stay
// unchanged before it is read as it is: written in place (truncated, then
// written) and read while its writer paused between a pin and its
// expires=, it gave that pin no expiry. A file that keeps changing is read
// as it is after ten of them.
const settleFor = 500 * time.Millisecond

// Verifier is the allowlist verifier. It is safe for concurrent use.
type Verifier struct {
	log      hclog.Logger
	now      func() time.Time
	debounce time.Duration
	// pollEvery is how often the watcher looks at the file itself.
	pollEvery time.Duration
	// afterReload, if set (tests), is called after every reload attempt.
	afterReload func(error)
	// watchDir adds a directory to the watcher; tests make it fail.
	watchDir func(w *fsnotify.Watcher, dir string) error
	// readFile reads the list: files.ReadTrusted, but for tests.
	readFile func(path string) ([]byte, error)
	// settleFor is settleFor, the constant, but for tests.
	settleFor time.Duration

	path  string // as the user gave it, after ~ expansion
	chain pinverifier.Chain
	list  atomic.Pointer[List]
	// trouble says why the list in force is not the file's newest
	// version, while it is not, as a clause for a rejection: the version
	// does not parse (pins it adds are not in force), or the file cannot
	// be read (no pin is).
	trouble atomic.Pointer[string]
	hash    [sha256.Size]byte // of the file the list came from; watcher only
	unread  string            // why the file could not be read, as last warned; watcher only
	notes   notify.Broadcaster

	mu   sync.Mutex // guards stop and done
	stop context.CancelFunc
	done chan struct{}
}

var (
	_ verify.Verifier       = (*Verifier)(nil)
	_ verify.PolicyNotifier = (*Verifier)(nil)
	_ verify.ValueChecker   = (*Verifier)(nil)
)

// New returns an unconfigured allowlist verifier logging to log (nil: nowhere).
func New(log hclog.Logger) *Verifier {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Verifier{log: log, now: time.Now, debounce: debounce, pollEvery: pollEvery, settleFor: settleFor,
		chain: pinverifier.ChainLeaf, watchDir: (*fsnotify.Watcher).Add, readFile: files.ReadTrusted}
}

// Describe lists the options.
func (v *Verifier) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{
		Name:    Name,
		Version: "1",
		Summary: "accept a peer whose certificate is listed in a file of pins (md5|sha1|sha256|spki:VALUE [expires=YYYY-MM-DD]), reloaded on change",
		Options: []verify.Option{
			{Name: "file", Description: "the allowlist file: one ALGO:VALUE [expires=YYYY-MM-DD] [# comment] a line; watched and reloaded", Required: true},
			{Name: "chain", Description: "which certificate must be listed: leaf (default), any, or ca (any but the leaf)"},
		},
	}, nil
}

// Configure loads the file and starts watching it. A missing or bad file
// is an error naming the option, the file and the line.
func (v *Verifier) Configure(ctx context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	file, path, chain, err := v.options(req.Options)
	if err != nil {
		return nil, err
	}
	// The file as it was before it was read is what the watch has seen:
	// an edit after the read, before the watch starts, is then a change
	// the poll sees. Taken after, it hid that edit until the next one,
	// trusting what the edit removed meanwhile.
	seen := statID(path)
	data, err := v.readFile(path)
	if wait := unsettled(data, statID(path), time.Now(), v.settleFor); err == nil && wait > 0 {
		// Perhaps half-written: read it again once it may have settled;
		// a writer still at it is then the watch's to follow.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("allowlist: %s is being written: %w", path, context.Cause(ctx))
		case <-time.After(wait):
		}
		seen = statID(path)
		data, err = v.readFile(path)
	}
	if err != nil {
		return nil, &verify.OptionError{Option: "file", Value: file, Err: fmt.Errorf("allowlist: %w", err)}
	}
	l, err := Parse(path, data)
	if err != nil {
		return nil, &verify.OptionError{Option: "file", Value: file, Err: err}
	}
	v.Close()
	v.path, v.chain, v.hash = path, chain, sha256.Sum256(data)
	v.list.Store(l)
	v.trouble.Store(nil)
	v.loaded(l)
	freeMemory()
	v.watch(seen)
	return &verify.ConfigureResponse{NeedsChain: chain != pinverifier.ChainLeaf}, nil
}

// CheckValues checks the options as Configure does, that the file can be
// read and, if it is at most files.CheckedSize, what is in it; a larger
// file is checked when the verifier starts. It keeps nothing.
func (v *Verifier) CheckValues(opts verify.Options) error {
	file, path, _, err := v.options(opts)
	if err != nil {
		return err
	}
	data, read, err := files.ReadIfSmall(path, files.CheckedSize)
	if err != nil {
		return &verify.OptionError{Option: "file", Value: file, Err: fmt.Errorf("allowlist: %w", err)}
	}
	if read {
		if _, err := Parse(path, data); err != nil {
			return &verify.OptionError{Option: "file", Value: file, Err: err}
		}
	}
	return nil
}

// options returns the file as given and as a path, and the chain.
func (v *Verifier) options(opts verify.Options) (file, path string, chain pinverifier.Chain, err error) {
	d, _ := v.Describe(context.Background())
	if err := verify.CheckOptions(d, opts); err != nil {
		return "", "", "", err
	}
	file = opts["file"][0]
	path, err = files.ExpandHome(file)
	if err != nil || path == "" {
		return "", "", "", &verify.OptionError{Option: "file", Value: file, Err: errors.New("want the path of an allowlist file")}
	}
	chain = pinverifier.ChainLeaf
	if c := opts["chain"]; len(c) == 1 {
		if chain, err = pinverifier.ParseChain(c[0]); err != nil {
			return "", "", "", &verify.OptionError{Option: "chain", Value: c[0], Err: err}
		}
	}
	return file, path, chain, nil
}

// loaded reports a list just put in force.
func (v *Verifier) loaded(l *List) {
	if l.Len() == 0 {
		v.log.Warn(fmt.Sprintf("%s lists no pins: every peer will be rejected", l.Name))
		return
	}
	v.log.Info(fmt.Sprintf("loaded %s from %s", pins(l.Len()), l.Name))
	var weak []string
	for _, a := range l.Algos() {
		if a == pin.MD5 || a == pin.SHA1 {
			weak = append(weak, strings.ToUpper(string(a)))
		}
	}
	if len(weak) > 0 {
		v.log.Warn(fmt.Sprintf("%s has %s pins, which are weak: MD5 and SHA-1 are collision-broken; prefer sha256 or spki pins", l.Name, strings.Join(weak, " and ")))
	}
	if lines := l.Expired(v.now()); len(lines) > 0 {
		v.log.Warn(fmt.Sprintf("%s has %s past their expiry, which reject their peers: %s", l.Name, pins(len(lines)), lineList(l.Name, lines)))
	}
}

// lineList names at most five lines of file, as FILE:LINE, and how many
// more there are.
func lineList(file string, lines []int) string {
	const most = 5
	names := make([]string, 0, most+1)
	for _, n := range lines[:min(len(lines), most)] {
		names = append(names, fmt.Sprintf("%s:%d", file, n))
	}
	if len(lines) > most {
		names = append(names, fmt.Sprintf("and %d more", len(lines)-most))
	}
	return strings.Join(names, ", ")
}

// PolicyChanges announces every reload.
func (v *Verifier) PolicyChanges(ctx context.Context) <-chan verify.PolicyChange {
	return v.notes.Subscribe(ctx)
}

// Close stops watching the file. The last list stays in force.
func (v *Verifier) Close() error {
	v.mu.Lock()
	stop, done := v.stop, v.done
	v.stop, v.done = nil, nil
	v.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	return nil
}

// Verify accepts when a chosen certificate of the chain is listed and its
// entry has not expired.
func (v *Verifier) Verify(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
	l := v.list.Load()
	if l == nil {
		return &verify.Verdict{Reason: "allowlist: not configured"}, nil
	}
	if len(req.PeerChain) == 0 {
		return &verify.Verdict{Reason: "allowlist: peer sent no certificate"}, nil
	}
	now := v.now()
	var expired *Entry
	listed := make(map[int]*Entry, 1)
	found, err := pinverifier.Find(v.chain, req, now, func(i int, der []byte) (bool, error) {
		es, err := l.Lookup(der)
		if err != nil {
			return false, err
		}
		for _, e := range es {
			if !e.Expires.IsZero() && !now.Before(e.Expires) {
				expired = e
				continue
			}
			listed[i] = e
			return true, nil
		}
		return false, nil
	})
	switch {
	case errors.Is(err, pinverifier.ErrBrokenChain):
		return &verify.Verdict{Reason: fmt.Sprintf("allowlist: %v", err)}, nil
	case err != nil:
		return &verify.Verdict{Reason: fmt.Sprintf("allowlist: cannot fingerprint peer certificate: %v", err)}, nil
	case found != nil:
		e := listed[found.Index]
		return &verify.Verdict{Allow: true, Matched: fmt.Sprintf("%s:%d %s:%s", l.Name, e.Line, e.Pin.Algo, e.Pin),
			CacheFor: pinverifier.CacheBound(maxCache, now, e.Expires, found.Until)}, nil
	}
	if expired != nil {
		return &verify.Verdict{Reason: fmt.Sprintf("allowlist: %s:%d: pin %s:%s expired on %s: rejecting the peer (failing closed); renew the expires= on that line if it is still trusted",
			l.Name, expired.Line, expired.Pin.Algo, expired.Pin, expired.Expires.AddDate(0, 0, -1).Format(time.DateOnly))}, nil
	}
	return &verify.Verdict{Reason: v.notListed(l, req)}, nil
}

// notListed says which certificate was not found and the line that would
// allow it.
func (v *Verifier) notListed(l *List, req *verify.Request) string {
	cands := pinverifier.Candidates(v.chain, req.PeerChain)
	if len(cands) == 0 {
		return fmt.Sprintf("allowlist: chain=%s but the peer sent only its leaf certificate", v.chain)
	}
	der := cands[0]
	what := "leaf certificate"
	if v.chain != pinverifier.ChainLeaf {
		what = fmt.Sprintf("no certificate of the chain (chain=%s) is listed; first candidate", v.chain)
	}
	d, err := pin.Sum(pin.SPKI, der)
	if err != nil {
		return fmt.Sprintf("allowlist: %s is not listed in %s and cannot be fingerprinted: %v", what, l.Name, err)
	}
	line := string(pin.SPKI) + ":" + pin.Pin{Algo: pin.SPKI, Digest: d}.String()
	if trouble := v.trouble.Load(); trouble != nil {
		return fmt.Sprintf("allowlist: %s%s is not among the %s in force: %s; its line would be %s",
			what, pinverifier.Subject(der), pins(l.Len()), *trouble, line)
	}
	return fmt.Sprintf("allowlist: %s%s is not listed in %s (%s); if you trust it, add this line to the file: %s",
		what, pinverifier.Subject(der), l.Name, pins(l.Len()), line)
}

// watch starts the watcher goroutine on the file's directory; seen is
// what statID said of the file before the list in force was read. Where the
// directory cannot be watched (a directory this user may enter but not
// list, or no inotify instance left), the goroutine still looks at the
// file every pollEvery, and keeps trying to watch the directory.
func (v *Verifier) watch(seen fileID) {
	abs, err := filepath.Abs(v.path)
	if err != nil { // no working directory: v.path was checked relative to it
		abs = v.path
	}
	dir := filepath.Dir(abs)
	wt := &watched{abs: abs, dir: dir, dirID: statID(dir), fileID: seen}
	if wt.w, err = fsnotify.NewWatcher(); err != nil {
		v.log.Warn(fmt.Sprintf("cannot watch the directory of %s (%v): checking the file every %s instead", v.path, err, v.pollEvery))
		wt.lost = true
	} else if err := v.watchDir(wt.w, dir); err != nil {
		v.log.Warn(fmt.Sprintf("cannot watch %s (%v): checking %s every %s instead", dir, err, v.path, v.pollEvery))
		wt.lost = true
	}
	// A symlinked file (a Kubernetes ConfigMap) changes when a link
	// elsewhere in the directory is swapped: then every event counts.
	fi, err := os.Lstat(abs)
	wt.anyEvent = err == nil && fi.Mode()&os.ModeSymlink != 0
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	v.mu.Lock()
	v.stop, v.done = stop, done
	v.mu.Unlock()
	go v.watchLoop(ctx, wt, done)
}

// watched is what the watch loop keeps track of.
type watched struct {
	w        *fsnotify.Watcher // nil if none could be made: the poll alone looks
	abs, dir string
	anyEvent bool
	// dirID and fileID identify what the directory and the file were at
	// the last look; the poll compares them.
	dirID, fileID fileID
	// armed is when the reload now waiting was first asked for; zero if
	// none waits.
	armed time.Time
	// settling is when a reload was first put off for a version that
	// had not settled (unsettled); zero if none was.
	settling time.Time
	lost     bool // the directory is not watched now
	unread   bool // the last reload could not read the file: try again
}

// fileID identifies a version of a file: what stat says of it. The
// change time is part of it: a pin is as long as another, so a list
// written over in place by a tool that keeps the modification time
// (cp -p, touch -r) changes neither the size nor that time.
type fileID struct {
	exists     bool
	dev, ino   uint64
	size       int64
	modUnixNan int64
	changeNano int64
}

// sameFile reports whether id and o are the same file, perhaps changed.
// Where inodes are unknown (not Unix), any change counts.
func (id fileID) sameFile(o fileID) bool {
	if id.ino == 0 && o.ino == 0 {
		return id == o
	}
	return id.exists == o.exists && id.dev == o.dev && id.ino == o.ino
}

func statID(path string) fileID {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}
	}
	id := fileID{exists: true, size: fi.Size(), modUnixNan: fi.ModTime().UnixNano(), changeNano: files.ChangeTime(fi).UnixNano()}
	id.dev, id.ino = devIno(fi)
	return id
}

// pollEvery is how often the watch loop looks at the directory and the
// file itself: a backstop for what fsnotify cannot see, such as the
// directory being replaced (mv d d.old; mkdir d), where the watch stays on
// the old directory.
const pollEvery = time.Second

func (v *Verifier) watchLoop(ctx context.Context, wt *watched, done chan struct{}) {
	defer close(done)
	// Without a watcher, its channels are nil and never ready.
	var events <-chan fsnotify.Event
	var errs <-chan error
	if wt.w != nil {
		defer wt.w.Close()
		events, errs = wt.w.Events, wt.w.Errors
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	poll := time.NewTicker(v.pollEvery)
	defer poll.Stop()
	// arm asks for a reload once the file has been quiet for the
	// debounce, but no later than ten of them after the first ask: events
	// another user can cause (files made in a shared directory, when
	// every event counts) must not hold a reload off for ever.
	arm := func() {
		now := time.Now()
		if wt.armed.IsZero() {
			wt.armed = now
		}
		if now.Sub(wt.armed) < 10*v.debounce {
			timer.Reset(v.debounce)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) == wt.dir && ev.Op&(fsnotify.Remove|fsnotify.Rename) != 0 {
				v.rewatch(wt, "was moved or removed")
				arm()
				continue
			}
			// A chmod of the list itself may make it refused: read it
			// again. Other files' chmods are an editor's.
			if (ev.Op == fsnotify.Chmod || !wt.anyEvent) && filepath.Clean(ev.Name) != wt.abs {
				continue
			}
			arm()
		case err, ok := <-errs:
			if !ok {
				return
			}
			v.log.Warn(fmt.Sprintf("watching %s: %v; checking the file every %s instead", v.path, err, v.pollEvery))
		case <-poll.C:
			// The directory's own size and time change with every file
			// made in it: only another directory in its place counts.
			dir := statID(wt.dir)
			if wt.w != nil && (wt.lost || !dir.sameFile(wt.dirID)) {
				v.rewatch(wt, "was replaced")
			}
			// A list the next read would refuse (made writable by others:
			// its mode, an ACL, its directories' owners or modes) is read
			// again, which refuses it, though its contents did not change.
			if id := statID(wt.abs); id != wt.fileID || wt.unread || !stillTrusted(v.path) {
				wt.fileID = id
				arm()
			}
		case <-timer.C:
			wt.armed = time.Time{}
			wt.fileID = statID(wt.abs)
			force := !wt.settling.IsZero() && time.Since(wt.settling) >= 10*v.settleFor
			err := v.reload(force)
			wt.unread = errors.Is(err, errUnread)
			var put *unsettledError
			if errors.As(err, &put) {
				if wt.settling.IsZero() {
					wt.settling = time.Now()
				}
				timer.Reset(put.wait)
			} else {
				wt.settling = time.Time{}
			}
			if v.afterReload != nil {
				v.afterReload(err)
			}
		}
	}
}

// stillTrusted reports whether path would be read now: no other user may
// have written it or its directories (files.OpenTrusted).
func stillTrusted(path string) bool {
	f, err := files.OpenTrusted(path)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// rewatch moves the watch to whatever directory now has the list's
// directory's name, warning that the old watch was lost. While the
// directory is missing, the poll keeps looking.
func (v *Verifier) rewatch(wt *watched, what string) {
	id := statID(wt.dir)
	if !wt.lost {
		v.log.Warn(fmt.Sprintf("the directory of %s %s: the watch on it is lost; watching it again", v.path, what))
	}
	wt.w.Remove(wt.dir) // the old directory, if still watched
	if err := v.watchDir(wt.w, wt.dir); err != nil {
		if !wt.lost {
			v.log.Warn(fmt.Sprintf("cannot watch %s (%v); checking for it every %s", wt.dir, err, v.pollEvery))
		}
		wt.lost = true
		return
	}
	wt.lost, wt.dirID = false, id
}

// freeMemory hands the memory of a parse (the file, every line) and of a
// replaced list back to the system at once. Without it the runtime keeps
// it, its heap growing to twice what is live before a collection: a list of
// 100,000 pins is some 20 MB live, and each reload read the whole file
// again (docs/performance.md).
func freeMemory() { debug.FreeOSMemory() }

// errUnread marks a reload that could not read the file.
var errUnread = errors.New("cannot read the allowlist")

// unsettledError is a reload put off for wait, until the file has settled.
type unsettledError struct {
	path string
	wait time.Duration
}

func (e *unsettledError) Error() string {
	return fmt.Sprintf("allowlist: %s changed just now and its last line has no newline yet: reading it again in %s", e.path, e.wait.Round(time.Millisecond))
}

// unsettled returns how long to wait before data, read from a file now
// stat'ed as id, is taken as it is: zero, unless its last line has no
// newline and the file changed less than settle ago, which may be a
// writer's pause in the middle of that line (see settleFor).
func unsettled(data []byte, id fileID, now time.Time, settle time.Duration) time.Duration {
	if len(data) == 0 || data[len(data)-1] == '\n' || !id.exists {
		return 0
	}
	// Every write sets the change time, and no tool can set it back.
	last := time.Unix(0, id.changeNano)
	if id.changeNano == 0 { // not known here
		last = time.Unix(0, id.modUnixNan)
	}
	age := now.Sub(last)
	switch {
	case age >= settle:
		return 0
	case age < 0: // a clock set back
		return settle
	}
	return settle - age
}

// reload reads the file again. A version that does not parse narrows
// what is in force (see narrow); a file that cannot be read (removed,
// refused as another user's to write, or any other error) leaves nothing
// in force until it can be read again, which the watch loop retries. A
// version that may be half-written is put off (an *unsettledError),
// unless force.
func (v *Verifier) reload(force bool) error {
	defer freeMemory()
	data, err := v.readFile(v.path)
	if err != nil {
		v.unreadable(err)
		return fmt.Errorf("allowlist: %s: %w: %w", v.path, errUnread, err)
	}
	v.unread = ""
	h := sha256.Sum256(data)
	if bytes.Equal(h[:], v.hash[:]) {
		return nil
	}
	if wait := unsettled(data, statID(v.path), time.Now(), v.settleFor); wait > 0 {
		if !force {
			err := &unsettledError{path: v.path, wait: wait}
			v.log.Debug(strings.TrimPrefix(err.Error(), "allowlist: "))
			return err
		}
		v.log.Warn(fmt.Sprintf("%s has kept changing for %s and its last line has no newline: reading it as it is", v.path, 10*v.settleFor))
	}
	l, err := Parse(v.path, data)
	if err != nil {
		// The list in force is no longer the last good file's: the next
		// good version, even that same file again, must be read.
		v.hash = h
		v.narrow(data, err)
		return err
	}
	v.hash = h
	v.list.Store(l)
	v.trouble.Store(nil)
	v.loaded(l)
	v.notes.Publish(fmt.Sprintf("allowlist %s reloaded: %s", v.path, pins(l.Len())))
	return nil
}

// unreadable handles a file that cannot be read, err saying why: a list
// whose removal or replacement by another user's file kept its last
// version in force would keep trusting a pin its owner had meant to
// revoke, so no pin is in force until the file can be read.
func (v *Verifier) unreadable(err error) {
	cur := v.list.Load()
	trouble := fmt.Sprintf("%s cannot be read (%v), and until it can no pin is trusted", v.path, err)
	v.trouble.Store(&trouble)
	// The next version read, even the last good one again, must be loaded.
	v.hash = [sha256.Size]byte{}
	if err.Error() == v.unread && cur.Len() == 0 { // the watch loop's retry
		v.log.Debug(fmt.Sprintf("%s still cannot be read: %v", v.path, err))
		return
	}
	v.unread = err.Error()
	empty, _ := Parse(v.path, nil)
	v.list.Store(empty)
	v.log.Warn(fmt.Sprintf("%s cannot be read (%v): every peer will be rejected until it can be read again (of the last list, %s dropped)", v.path, err, pins(cur.Len())))
	v.notes.Publish(fmt.Sprintf("allowlist %s cannot be read: no pin in force", v.path))
}

// narrow handles a new version of the file that does not parse, err
// saying why: what it removed or brought forward already holds, what it
// added waits for a version that parses (List.Keep).
func (v *Verifier) narrow(data []byte, err error) {
	cur := v.list.Load()
	why := strings.TrimPrefix(err.Error(), "allowlist: ")
	trouble := fmt.Sprintf("%s does not parse (%s), and until it does only pins its last good version had are trusted", v.path, why)
	v.trouble.Store(&trouble)
	kept, changed := cur.Keep(data)
	if !changed {
		v.log.Warn(fmt.Sprintf("%s (new version rejected, keeping the last good list of %s)", why, pins(cur.Len())))
		return
	}
	v.list.Store(kept)
	if kept.Len() == 0 {
		v.log.Warn(fmt.Sprintf("%s (new version rejected; it lists none of the last good list's %s on lines that parse: every peer will be rejected until the file is fixed)", why, pins(cur.Len())))
	} else {
		v.log.Warn(fmt.Sprintf("%s (new version rejected; of the last good list of %s, only the %s it still lists on lines that parse stay in force, with the earlier of the two expiries; pins it adds wait until the file is fixed)",
			why, pins(cur.Len()), pins(kept.Len())))
	}
	v.notes.Publish(fmt.Sprintf("allowlist %s narrowed by a version that does not parse: %s in force", v.path, pins(kept.Len())))
}

// pins says how many pins n is, in words.
func pins(n int) string {
	if n == 1 {
		return "1 pin"
	}
	return fmt.Sprintf("%d pins", n)
}
