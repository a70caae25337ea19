// Package tofu trusts a peer on first use, like SSH's known_hosts: the
// first time a peer is seen its public-key (SPKI SHA-256) pin is recorded
// in a pins file, and later its key must match. A change is rejected with a
// message in the spirit of OpenSSH's "REMOTE HOST IDENTIFICATION HAS
// CHANGED", naming the file and line, the old and the new pin, and how to
// accept the change.
//
// The pins file (option file, default ~/.tlspin/known_pins) holds lines
// `KEY spki:BASE64 [# comment]`. It is created 0600 in a 0700 directory
// and always replaced atomically (temporary file and rename) under a lock,
// so several tlspin processes may share it. The lock is a file of its own
// next to it, FILE.lock, mode 0600, so that no other user can hold it;
// recording waits for it no longer than the commit may take. Edits made
// while tlspin runs are seen at the next connection, and announced as a
// change of policy within a second.
//
// The key of a peer:
//   - a client verifying a server: HOST:PORT, where HOST is the server
//     name the client asked for (SNI), or else the host of the remote
//     address, and PORT the remote port. So `tlspin send example.com:443`
//     and `tlspin send 127.0.0.1:443` are different peers, as in SSH.
//   - a server verifying a client: client@HOST, HOST the client's address
//     without its (ephemeral) port.
//
// Modes: accept-new (default) records unknown peers; strict accepts only
// peers already in the file.
//
// A new peer is recorded only once it has proved that it holds the key it
// presented: Verify allows it with a pending commit, and the pin is written
// by Commit, which the host calls after the handshake has succeeded (a
// server that sends a valid certificate but cannot sign with its key is
// never recorded). Until then, or for a minute at most from when the key
// was first seen (seeing it again does not prolong that), another key for
// the same peer is rejected, as if the first were already recorded. A
// record after the file was written in place (an editor that empties it,
// then writes it) waits until the file has been unchanged for half a
// second, and decides on what was written.
package tofu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/files"
	"github.com/tlspin/tlspin/verifiers/internal/notify"
	"github.com/tlspin/tlspin/verifiers/pinverifier"
)

// Name is the verifier's registered name.
const Name = "tofu"

// DefaultFile is where pins are kept unless the option file says otherwise.
const DefaultFile = "~/.tlspin/known_pins"

// Mode says what to do with a peer not in the file.
type Mode string

const (
	// AcceptNew records an unknown peer and accepts it.
	AcceptNew Mode = "accept-new"
	// Strict rejects an unknown peer.
	Strict Mode = "strict"
)

// Verifier is the tofu verifier. It is safe for concurrent use.
type Verifier struct {
	log hclog.Logger
	now func() time.Time

	path string // the pins file as configured, named in messages
	file string // path resolved when configured: read, locked and written
	mode Mode

	mu sync.Mutex // guards db, pending and the file
	// turn is held by the record that takes the file's lock (lock):
	// records of this verifier take turns before it, so that the lock is
	// contended for by other processes only.
	turn    chan struct{}
	db      *known
	badFile error // the file's current version does not parse
	pending map[string]pendingPin
	// expiry lists the keys of pending, each as it was added, oldest
	// first: the expired are forgotten from its front, without looking
	// at the others (one a client address, a host can have many).
	expiry []pendingKey
	// looked counts the keys looked at to forget the expired (tests).
	looked int
	notes  notify.Broadcaster
	// unread is why the file could not be read at the last look, as
	// logged; "" once it was read.
	unread string
	// settleFor is how long a file written in place must stay unchanged
	// before a record decides on it (settleFor, the constant; tests).
	settleFor time.Duration
}

// pendingPin is a new peer's pin allowed but not yet committed.
type pendingPin struct {
	pin   pin.Pin
	until time.Time
}

// pendingKey is a pending pin's key and when it expires.
type pendingKey struct {
	key   string
	until time.Time
}

// settleFor is how long a pins file written in place (by an editor that
// truncates it, then writes it) must stay unchanged before a record
// decides on it: caught between the two, it lists no peer.
const settleFor = 500 * time.Millisecond

// pendingFor is how long an allowed new peer's pin waits for its commit
// (the handshake to succeed) before it is forgotten.
const pendingFor = time.Minute

var (
	_ verify.Verifier       = (*Verifier)(nil)
	_ verify.Committer      = (*Verifier)(nil)
	_ verify.PolicyNotifier = (*Verifier)(nil)
)

// New returns an unconfigured tofu verifier logging to log (nil: nowhere).
func New(log hclog.Logger) *Verifier {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Verifier{log: log, now: time.Now, mode: AcceptNew, settleFor: settleFor, turn: make(chan struct{}, 1)}
}

// Describe lists the options.
func (v *Verifier) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{
		Name:    Name,
		Version: "1",
		Summary: "trust on first use, like SSH known_hosts: record a new peer's public-key pin, reject it if it changes",
		Options: []verify.Option{
			{Name: "file", Description: "pins file, one `HOST:PORT spki:BASE64` a line (default " + DefaultFile + ")"},
			{Name: "mode", Description: "accept-new (default): record unknown peers; strict: accept only peers already in the file"},
		},
	}, nil
}

// Configure reads the pins file. A file that cannot be parsed is an error;
// so is a missing file in strict mode, where it would reject everyone.
func (v *Verifier) Configure(ctx context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	d, _ := v.Describe(ctx)
	if err := verify.CheckOptions(d, req.Options); err != nil {
		return nil, err
	}
	mode := AcceptNew
	if m := req.Options["mode"]; len(m) == 1 {
		switch Mode(strings.ToLower(strings.TrimSpace(m[0]))) {
		case AcceptNew:
		case Strict:
			mode = Strict
		default:
			return nil, &verify.OptionError{Option: "mode", Value: m[0], Err: errors.New("want accept-new or strict")}
		}
	}
	file := DefaultFile
	if f := req.Options["file"]; len(f) == 1 {
		file = f[0]
	}
	path, err := files.ExpandHome(file)
	if err != nil || path == "" {
		return nil, &verify.OptionError{Option: "file", Value: file, Err: fmt.Errorf("want the path of a pins file: %v", err)}
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, &verify.OptionError{Option: "file", Value: file, Err: errors.New("is a directory")}
	}
	// Resolved once: the rename that records a pin would replace a
	// link, making a private copy of the file it leads to.
	real, err := files.Resolve(path)
	if err != nil {
		return nil, &verify.OptionError{Option: "file", Value: file, Err: err}
	}
	db, err := readKnownAs(path, real)
	if err != nil {
		return nil, &verify.OptionError{Option: "file", Value: file, Err: err}
	}
	if mode == Strict && !db.stamp.exists {
		return nil, &verify.OptionError{Option: "file", Value: file, Err: errors.New("does not exist, and mode=strict accepts only peers recorded there (use mode=accept-new to record them)")}
	}
	if real != path {
		v.log.Info(fmt.Sprintf("pins file %s leads to %s, where pins are read and recorded", path, real))
	}
	v.mu.Lock()
	v.path, v.file, v.mode, v.db = path, real, mode, db
	v.mu.Unlock()
	return &verify.ConfigureResponse{}, nil
}

// PolicyChanges announces every recorded pin and every edit of the file.
// While ctx lasts, the file is looked at every EditCheckEvery, so that an
// edit (a compromised pin removed) is announced without waiting for a
// connection: the host then drops cached verdicts and asks again about
// the peers of open connections.
func (v *Verifier) PolicyChanges(ctx context.Context) <-chan verify.PolicyChange {
	ch := v.notes.Subscribe(ctx)
	go v.checkEdits(ctx)
	return ch
}

// EditCheckEvery is how often the file is looked at for edits while the
// policy's changes are watched.
const EditCheckEvery = time.Second

// checkEdits rereads the file when it changed, every EditCheckEvery until
// ctx ends.
func (v *Verifier) checkEdits(ctx context.Context) {
	t := time.NewTicker(EditCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v.mu.Lock()
		if v.db != nil {
			v.refresh()
		}
		v.mu.Unlock()
	}
}

// Key returns the key a peer is recorded under (see the package doc).
func Key(req *verify.Request) (string, error) {
	host, port, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host, port = req.RemoteAddr, ""
	}
	if req.Side == verify.ServerVerifiesClient {
		if host == "" {
			return "", errors.New("tofu: the client's address is unknown")
		}
		return CanonicalKey("client@" + host), nil
	}
	// What follows the last colon of a unix socket's path that holds one
	// is no port: keys have none such (ValidKey).
	if port != "" && !portOrPath(port) {
		host, port = req.RemoteAddr, ""
	}
	if req.ServerName != "" {
		host = req.ServerName
	}
	if host == "" {
		return "", errors.New("tofu: neither the server name nor the remote address is known")
	}
	// A line of the file holds one key: a server name with a newline in
	// it would record another peer's line.
	if err := checkKey(host); err != nil {
		return "", err
	}
	key := CanonicalKey(host)
	if port != "" {
		key = CanonicalKey(net.JoinHostPort(host, port))
	}
	if err := ValidKey(key); err != nil {
		return "", fmt.Errorf("tofu: the peer's key %q %w", key, err)
	}
	return key, nil
}

// CanonicalKey returns key (HOST:PORT, HOST, or client@HOST) spelled as
// the verifier records and looks it up, so that two spellings of one peer
// are one key: the host in lower case without its root's trailing dot, an
// IP address in its shortest form (an IPv4 address mapped into IPv6 as
// IPv4, IPv6 without brackets after client@), a port as its number (no
// leading zeros; a service name such as https as the port it stands for,
// as dialling takes it). Without it `[0::1]:443`, `[::ffff:127.0.0.1]:443`
// or `127.0.0.1:https`, each dialling a server recorded as `[::1]:443` or
// `127.0.0.1:443`, were peers of their own, and a man-in-the-middle met
// there a first use.
func CanonicalKey(key string) string {
	key = strings.ToLower(key)
	if h, ok := strings.CutPrefix(key, "client@"); ok {
		return "client@" + canonicalHost(h)
	}
	host, port, err := net.SplitHostPort(key)
	if err != nil {
		return canonicalHost(key)
	}
	return net.JoinHostPort(canonicalHost(host), canonicalPort(port))
}

// canonicalHost is the host of a key (lower case already): an IP address
// in its shortest form, a name without its root's trailing dot.
func canonicalHost(h string) string {
	if len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(h, ".")
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	return h
}

// canonicalPort is a port as its number: without leading zeros, and a
// service name as the port dialling takes it for. One that is neither
// stays as written (a dial to it fails).
func canonicalPort(p string) string {
	if p == "" {
		return p
	}
	if n, err := strconv.ParseUint(p, 10, 16); err == nil {
		return strconv.FormatUint(n, 10)
	}
	if n, err := net.LookupPort("tcp", p); err == nil {
		return strconv.Itoa(n)
	}
	return p
}

// Verify accepts a known peer whose key is unchanged, and in accept-new
// mode accepts an unknown one with a pending commit: it records nothing.
func (v *Verifier) Verify(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
	key, got, leaf, verdict := v.peer(req)
	if verdict != nil {
		return verdict, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.db == nil {
		return &verify.Verdict{Reason: "tofu: not configured"}, nil
	}
	v.refresh()
	if verdict := v.decide(v.db, key, got); verdict != nil {
		return verdict, nil
	}
	if v.mode == Strict {
		return &verify.Verdict{Reason: fmt.Sprintf("tofu: %s is not in %s and mode=strict accepts only known peers; it presented %s%s; if you trust it: %s",
			key, v.path, entry(got), pinverifier.Subject(leaf), knownPins(v.path, "add", key, entry(got)))}, nil
	}
	if v.badFile != nil {
		return &verify.Verdict{Reason: fmt.Sprintf("tofu: cannot record %s (rejecting, failing closed): %v", key, v.badFile)}, nil
	}
	if reason := v.pendingOther(key, got); reason != "" {
		return &verify.Verdict{Reason: reason}, nil
	}
	if req.NoCommit {
		// No handshake will succeed for this request: holding its key as
		// being recorded would refuse another for a minute (the new key
		// of a server whose old one's open connection was asked about
		// again).
		return &verify.Verdict{Allow: true, Commit: true, Matched: fmt.Sprintf("%s first use: would be recorded in %s after a handshake", key, v.path)}, nil
	}
	now := v.now()
	if v.pending == nil {
		v.pending = map[string]pendingPin{}
	}
	for len(v.expiry) > 0 && !now.Before(v.expiry[0].until) {
		e := v.expiry[0]
		v.looked++
		v.expiry[0] = pendingKey{}
		v.expiry = v.expiry[1:]
		// Unless committed and seen again since, with a deadline of its own.
		if p, ok := v.pending[e.key]; ok && p.until.Equal(e.until) {
			delete(v.pending, e.key)
		}
	}
	// The same key seen again while it waits keeps its first deadline: a
	// peer that presents a key and never completes a handshake with it
	// (which needs no private key) must not hold the peer's first use
	// for longer than a minute by trying again.
	if p, ok := v.pending[key]; !ok || !now.Before(p.until) {
		until := now.Add(pendingFor)
		v.pending[key] = pendingPin{pin: got, until: until}
		v.expiry = append(v.expiry, pendingKey{key: key, until: until})
	}
	return &verify.Verdict{Allow: true, Commit: true, Matched: fmt.Sprintf("%s first use: recorded in %s once the handshake succeeds", key, v.path)}, nil
}

// Commit records a new peer after its handshake succeeded. It decides
// again: a peer now known is left as it is, and nothing is recorded in
// strict mode. A peer recorded meanwhile with another key (by another
// process, or tlspin known-pins) is an error, as Verify would now reject
// it: the host then takes back the allow this commit was for (and
// ignores the error if tofu did not ask for the commit, another verifier
// having allowed the peer). It waits for the file's lock at most until
// ctx is done, and Verify goes on meanwhile; the peer's pending pin holds
// until recording ends.
func (v *Verifier) Commit(ctx context.Context, req *verify.Request) (*verify.CommitResponse, error) {
	key, got, leaf, verdict := v.peer(req)
	if verdict != nil {
		return nil, errors.New(verdict.Reason)
	}
	v.mu.Lock()
	if v.db == nil {
		v.mu.Unlock()
		return nil, errors.New("tofu: not configured")
	}
	v.refresh()
	// A known peer and strict mode record nothing.
	if known := v.decide(v.db, key, got); v.mode == Strict || known != nil {
		v.committed(key, got)
		v.mu.Unlock()
		if known != nil && !known.Allow && v.mode != Strict {
			return nil, errors.New(known.Reason)
		}
		return &verify.CommitResponse{}, nil
	}
	// Nor is a second key while the first one seen waits to be
	// recorded, as Verify rejected it: the host commits a tofu that did
	// not ask (another verifier allowed the peer), and this commit must
	// not record the key Verify refused.
	if reason := v.pendingOther(key, got); reason != "" {
		v.mu.Unlock()
		return nil, errors.New(reason)
	}
	file := v.file
	v.mu.Unlock()
	if verdict := v.record(ctx, file, key, got, leaf); !verdict.Allow {
		return nil, errors.New(verdict.Reason)
	}
	return &verify.CommitResponse{}, nil
}

// pendingOther says why got is refused for key when another key, seen
// first, waits to be recorded for it; "" if none does. v.mu is held.
func (v *Verifier) pendingOther(key string, got pin.Pin) string {
	if p, ok := v.pending[key]; ok && v.now().Before(p.until) && !p.pin.Equal(got.Digest) {
		return fmt.Sprintf("tofu: %s presented %s while another key, %s, seen first, is being recorded for it; rejecting the second key",
			key, entry(got), entry(p.pin))
	}
	return ""
}

// committed forgets key's pending pin once got, its pin, is committed.
func (v *Verifier) committed(key string, got pin.Pin) {
	if p, ok := v.pending[key]; ok && p.pin.Equal(got.Digest) {
		delete(v.pending, key)
	}
}

// peer returns the key and pin of req's peer, or a rejecting verdict.
func (v *Verifier) peer(req *verify.Request) (string, pin.Pin, []byte, *verify.Verdict) {
	leaf := req.Leaf()
	if leaf == nil {
		return "", pin.Pin{}, nil, &verify.Verdict{Reason: "tofu: peer sent no certificate"}
	}
	key, err := Key(req)
	if err != nil {
		return "", pin.Pin{}, nil, &verify.Verdict{Reason: err.Error()}
	}
	d, err := pin.Sum(pin.SPKI, leaf)
	if err != nil {
		return "", pin.Pin{}, nil, &verify.Verdict{Reason: fmt.Sprintf("tofu: cannot fingerprint peer certificate: %v", err)}
	}
	return key, pin.Pin{Algo: pin.SPKI, Digest: d}, leaf, nil
}

// decide returns the verdict for a key already in db, or nil.
func (v *Verifier) decide(db *known, key string, got pin.Pin) *verify.Verdict {
	recs := db.byKey[key]
	if len(recs) == 0 {
		return nil
	}
	for _, r := range recs {
		if r.pin.Equal(got.Digest) {
			return &verify.Verdict{Allow: true, Matched: fmt.Sprintf("%s:%d %s", v.path, r.line, key)}
		}
	}
	return &verify.Verdict{Reason: v.changed(key, recs, got)}
}

// changed is the message for a peer whose key is not the recorded one.
func (v *Verifier) changed(key string, recs []record, got pin.Pin) string {
	var where, old []string
	for _, r := range recs {
		where = append(where, fmt.Sprintf("%s:%d", v.path, r.line))
		old = append(old, entry(r.pin))
	}
	forget := knownPins(v.path, "remove", key)
	return fmt.Sprintf("tofu: WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for %s! "+
		"It presented public key %s, but %s records %s. "+
		"Someone could be eavesdropping on you right now (man-in-the-middle attack), or the peer's key was replaced. "+
		"If you know the change is expected, forget the old pin and connect again to record the new one (%s), or replace it at once (%s && %s)",
		key, entry(got), strings.Join(where, ", "), strings.Join(old, " or "),
		forget, forget, knownPins(v.path, "add", key, entry(got)))
}

// record adds key's pin to file (v.file, resolved) and accepts the peer.
// Under the file's lock it reads the file again, so that a pin recorded
// meanwhile by another process is honoured, not overwritten. It waits for
// the lock without holding v.mu, and takes v.mu once it has it.
func (v *Verifier) record(ctx context.Context, file, key string, got pin.Pin, leaf []byte) *verify.Verdict {
	unlock, err := v.lock(ctx, file, key)
	if err == nil {
		if err = v.settle(ctx, file); err != nil {
			unlock()
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	// Recorded or not, the pending pin is settled before v.mu is free.
	v.committed(key, got)
	failed := func(err error) *verify.Verdict {
		return &verify.Verdict{Reason: fmt.Sprintf("tofu: cannot record %s (rejecting, failing closed): %s", key, strings.TrimPrefix(err.Error(), "tofu: "))}
	}
	if err != nil {
		return failed(err)
	}
	defer unlock()
	if v.file != file { // configured again meanwhile
		return failed(fmt.Errorf("the pins file changed from %s to %s", file, v.file))
	}
	db, err := readKnownAs(v.path, v.file)
	if err != nil {
		v.log.Error(strings.TrimPrefix(err.Error(), "tofu: "))
		return failed(err)
	}
	if verdict := v.decide(db, key, got); verdict != nil {
		v.db = db
		return verdict
	}
	data, n := db.appendLine(line(key, got) + " # first seen " + v.now().UTC().Format(time.DateOnly))
	if err := files.WriteAtomic(v.file, data, 0o600); err != nil {
		return failed(err)
	}
	if fresh, err := readKnownAs(v.path, v.file); err == nil {
		v.db = fresh
	} else {
		v.db = db
	}
	v.log.Info(fmt.Sprintf("added %s (spki sha256//%s)%s to %s:%d", key, got.String(), pinverifier.Subject(leaf), v.path, n))
	v.notes.Publish(fmt.Sprintf("tofu: recorded %s", key))
	return &verify.Verdict{Allow: true, Matched: fmt.Sprintf("%s:%d %s (recorded now)", v.path, n, key)}
}

// settle waits, holding the file's lock but not v.mu, until file (v.file)
// has stayed unchanged for v.settleFor if it was written in place since
// it was last read, or the version read was itself written so: an editor
// that saves in place truncates the file, then writes it, and a record
// that read it in between took every peer for new, and replaced the file
// (the editor's write then went to the file it had open). tlspin only
// ever replaces the file (another inode), which needs no wait; nor does
// a file last changed longer ago than that.
func (v *Verifier) settle(ctx context.Context, file string) error {
	v.mu.Lock()
	seen, inPlace, wait := v.db.stamp, v.db.inPlace, v.settleFor
	v.mu.Unlock()
	st, err := currentStamp(file)
	if err != nil || !(inPlace || st.exists && st.ino != 0 && st.ino == seen.ino && st != seen) {
		return nil // a read error is the read's to report
	}
	return waitSettled(ctx, file, st, wait)
}

// waitSettled waits until file, now st, has stayed unchanged for wait:
// last changed that long ago, as the file says or as seen here (a clock
// set back cannot hold it longer). A file that keeps changing holds it
// until ctx is done.
func waitSettled(ctx context.Context, file string, st stamp, wait time.Duration) error {
	t := time.NewTicker(wait / 10)
	defer t.Stop()
	// Quiet: last changed (as the file says, or as seen here) that long ago.
	quiet := time.Now()
	for {
		last := st.mod
		if st.changed.After(last) {
			last = st.changed
		}
		if !st.exists || time.Since(last) >= wait || time.Since(quiet) >= wait {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tofu: %s is being written in place (by an editor?) and did not stay unchanged for %s: %w", file, wait, context.Cause(ctx))
		case <-t.C:
		}
		next, err := currentStamp(file)
		if err != nil {
			return nil
		}
		if next != st {
			st, quiet = next, time.Now()
		}
	}
}

// lock creates the directory of the pins file (resolved) and takes the
// file's lock for recording key, once the records of v before it are
// done, logging when another process holds it.
func (v *Verifier) lock(ctx context.Context, file, key string) (func(), error) {
	wctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	select {
	case v.turn <- struct{}{}:
	case <-wctx.Done():
		err := fmt.Errorf("tofu: gave up waiting for this verifier's other records: %w", wctx.Err())
		v.log.Error(fmt.Sprintf("cannot record %s: %s", key, strings.TrimPrefix(err.Error(), "tofu: ")))
		return nil, err
	}
	done := func() { <-v.turn }
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		done()
		return nil, fmt.Errorf("tofu: %w", err)
	}
	unlock, err := lock(ctx, file, func(name string) {
		v.log.Warn(fmt.Sprintf("waiting to record %s: another process holds the lock %s", key, name))
	})
	if err != nil {
		done()
		v.log.Error(fmt.Sprintf("cannot record %s: %s", key, strings.TrimPrefix(err.Error(), "tofu: ")))
		return nil, err
	}
	return func() { unlock(); done() }, nil
}

// refresh rereads the file when it changed since it was read. A file
// that became bad is logged, nothing is recorded until it is fixed, and of
// the pins read before only those it still lists on lines that parse
// stay: replacing a compromised key takes effect even if the same edit
// has a typo elsewhere.
func (v *Verifier) refresh() {
	st, err := currentStamp(v.file)
	if err != nil || st == v.db.stamp {
		return
	}
	db, err := readKnownPartly(v.path, v.file)
	if err != nil && db == nil {
		// Not read at all (refused as others' to write, an I/O error, no
		// descriptor left): this version is unseen, and is read again at
		// the next look, so that an edit it holds (a compromised pin
		// replaced) takes effect once it can be read. Marked as seen, it
		// was not read again until the file changed once more.
		v.badFile = err
		if why := strings.TrimPrefix(err.Error(), "tofu: "); why != v.unread {
			v.unread = why
			v.log.Error(fmt.Sprintf("%s (keeping the pins read before; recording nothing until it can be read)", why))
		}
		return
	}
	v.unread = ""
	if err != nil {
		// Do not reread the same bad version on every connection.
		v.db.stamp = st
		v.badFile = err
		why := strings.TrimPrefix(err.Error(), "tofu: ")
		if db != nil { // the lines that parse
			if kept, dropped := v.db.keep(db); dropped > 0 {
				kept.stamp = st
				v.db = kept
				v.log.Error(fmt.Sprintf("%s (edit rejected; of the pins read before, the %d it no longer lists on lines that parse are no longer trusted, and nothing is recorded until it is fixed)", why, dropped))
				v.notes.Publish(fmt.Sprintf("tofu: %s narrowed by an edit that does not parse", v.path))
				return
			}
		}
		v.log.Error(fmt.Sprintf("%s (keeping the pins read before; recording nothing until it is fixed)", why))
		return
	}
	// The same file changed: written in place, which a record waits to
	// end (settle). tlspin's own writes replace the file.
	db.inPlace = v.db.stamp.exists && db.stamp.ino != 0 && db.stamp.ino == v.db.stamp.ino
	v.db, v.badFile = db, nil
	v.notes.Publish(fmt.Sprintf("tofu: %s changed", v.path))
}

// entry is p as a line of the file has it, whatever form a line written
// by hand gave it in ("spki:sha256//..." is no pin).
func entry(p pin.Pin) string {
	return string(pin.SPKI) + ":" + pin.Pin{Algo: pin.SPKI, Digest: p.Digest}.String()
}

func line(key string, p pin.Pin) string { return key + " " + entry(p) }

// knownPins is the tlspin known-pins command that edits the pins file at
// path (under tofu's lock, unlike an editor).
func knownPins(path string, args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = pinverifier.ShellQuote(a)
	}
	return "tlspin known-pins --file " + pinverifier.ShellQuote(path) + " " + strings.Join(q, " ")
}
