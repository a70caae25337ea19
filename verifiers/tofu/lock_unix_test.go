//go:build unix

package tofu

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/verifiers/internal/vtest"
)

// TestOthersCannotWedgeRecording: tofu used to take a blocking flock on
// the pins file's directory, which any user who may open the directory
// (mode 0755, /tmp) can lock too. Holding it made Commit wait forever
// holding v.mu, so every later Verify hung until the host's timeout killed
// the plugin. The directory's lock must not matter; a lock held on the
// lock file (by another tlspin process: no other user can open it) makes
// Commit give up when its context is done, naming the lock file, and
// Verify answers meanwhile.
func TestOthersCannotWedgeRecording(t *testing.T) {
	tests := []struct {
		name string
		held func(path string) string // what another process locks
		// whether Commit must wait for it and give up
		waits bool
	}{
		{"the directory, which any user who may open it can lock", filepath.Dir, false},
		{"the lock file, by another tlspin process", func(path string) string { return path + lockSuffix }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			mkdir(t, dir, 0o755)
			path := filepath.Join(dir, "known_pins")
			waiting := &signal{t: t, text: "another process holds the lock", ch: make(chan struct{})}
			v := New(hclog.New(&hclog.LoggerOptions{Output: waiting, Level: hclog.Info}))
			if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{"file": {path}}}); err != nil {
				t.Fatal(err)
			}
			known := vtest.New(t, vtest.Spec{CN: "known"})
			if !vtest.Handshake(t, v, req(known, "127.0.0.1:1")).Allow {
				t.Fatal("first use rejected")
			}
			release := hold(t, tt.held(path))

			peer := req(vtest.New(t, vtest.Spec{CN: "new"}), "127.0.0.1:2")
			if verdict := vtest.Verify(t, v, peer); !verdict.Allow || !verdict.Commit {
				t.Fatalf("new peer: %+v, want allowed with a commit", verdict)
			}
			const deadline = time.Second
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				_, err := v.Commit(ctx, peer)
				done <- err
			}()
			// Without the fix, Commit waits for the directory forever:
			// give it the deadline and ample slack.
			late := time.NewTimer(deadline + 5*time.Second)
			defer late.Stop()
			if !tt.waits {
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("Commit: %v", err)
					}
				case <-late.C:
					t.Fatal("ATTACK: Commit is stuck on a lock another user holds on the directory")
				}
				data, _ := os.ReadFile(path)
				if strings.Count(string(data), "127.0.0.1:") != 2 {
					t.Errorf("the new peer was not recorded:\n%s", data)
				}
				if fi, err := os.Lstat(path + lockSuffix); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
					t.Errorf("lock file: %v, %v; want a regular file, mode 0600, that no other user may open", fi, err)
				}
				return
			}

			select {
			case <-waiting.ch:
			case err := <-done:
				t.Fatalf("Commit did not wait for the lock held on %s: %v", tt.held(path), err)
			}
			// Commit is waiting: Verify must answer, for a known peer, a
			// new one, and the pending one's rival key.
			verdicts := make(chan *verify.Verdict, 3)
			go func() {
				for _, r := range []*verify.Request{req(known, "127.0.0.1:1"), req(vtest.New(t, vtest.Spec{CN: "other"}), "127.0.0.1:3"), req(vtest.New(t, vtest.Spec{CN: "mitm"}), "127.0.0.1:2")} {
					verdict, err := v.Verify(context.Background(), r)
					if err != nil {
						verdict = &verify.Verdict{Reason: err.Error()}
					}
					verdicts <- verdict
				}
			}()
			for i, want := range []bool{true, true, false} {
				select {
				case verdict := <-verdicts:
					if verdict.Allow != want {
						t.Errorf("Verify %d while Commit waits: %+v, want allowed %v", i, verdict, want)
					}
				case err := <-done:
					t.Fatalf("ATTACK: Verify %d was blocked until Commit gave up (%v)", i, err)
				}
			}
			select {
			case err := <-done:
				if took := time.Since(start); took > deadline+time.Second {
					t.Errorf("Commit returned after %v, its deadline was %v", took, deadline)
				}
				if err == nil || !strings.Contains(err.Error(), path+lockSuffix) || !strings.Contains(err.Error(), "another process holds") {
					t.Errorf("Commit = %v, want an error naming the lock file %s and what holds it up", err, path+lockSuffix)
				}
			case <-late.C:
				t.Fatal("Commit did not give up when its context was done")
			}

			// Once the lock is free, the peer is recorded at its next handshake.
			release()
			if !vtest.Handshake(t, v, peer).Allow {
				t.Fatal("rejected once the lock is free")
			}
			if db, _ := readKnown(path); len(db.byKey["127.0.0.1:2"]) != 1 {
				t.Error("not recorded once the lock is free")
			}
		})
	}
}

// TestLockFileRefused: the lock file is opened without following links,
// created 0600, and refused unless it is a regular file of this user's:
// another user who planted it could otherwise hold it, or make tofu create
// or lock a file of their choosing.
func TestLockFileRefused(t *testing.T) {
	tests := []struct {
		name   string
		plant  func(t *testing.T, lockPath, elsewhere string)
		refuse string // "" when it is accepted
	}{
		{"a symbolic link to a file", func(t *testing.T, l, e string) {
			vtest.WriteFile(t, e, nil)
			symlink(t, e, l)
		}, "is a symbolic link"},
		{"a dangling symbolic link", func(t *testing.T, l, e string) { symlink(t, e, l) }, "is a symbolic link"},
		{"a FIFO", func(t *testing.T, l, _ string) {
			if err := syscall.Mkfifo(l, 0o600); err != nil {
				t.Skip(err)
			}
		}, "not a regular file"},
		{"another user's file", func(t *testing.T, l, _ string) {
			vtest.WriteFile(t, l, nil)
			if err := os.Lchown(l, 54321, -1); err != nil {
				t.Skipf("cannot give a file to another user here: %v", err)
			}
		}, "belongs to uid 54321"},
		{"my file, open to others", func(t *testing.T, l, _ string) {
			vtest.WriteFile(t, l, nil)
			if err := os.Chmod(l, 0o644); err != nil {
				t.Fatal(err)
			}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			path := filepath.Join(root, "known_pins")
			elsewhere := filepath.Join(root, "elsewhere")
			tt.plant(t, path+lockSuffix, elsewhere)
			before, beforeErr := os.ReadFile(elsewhere)
			v, err := newTofu(t, verify.Options{"file": {path}})
			if err != nil {
				t.Fatal(err)
			}
			peer := req(vtest.New(t, vtest.Spec{CN: "a"}), "127.0.0.1:1")
			if verdict := vtest.Verify(t, v, peer); !verdict.Allow {
				t.Fatal(verdict.Reason)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, commitErr := v.Commit(ctx, peer)
			_, _, addErr := AddPin(ctx, path, "127.0.0.1:2", peerPin(t, peer), "")
			if tt.refuse == "" {
				if commitErr != nil || addErr != nil {
					t.Fatalf("Commit: %v; AddPin: %v", commitErr, addErr)
				}
				if fi, err := os.Lstat(path + lockSuffix); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("lock file %v, %v; want it closed to others (0600)", fi, err)
				}
				return
			}
			for what, err := range map[string]error{"Commit": commitErr, "AddPin": addErr} {
				if err == nil || !strings.Contains(err.Error(), path+lockSuffix) || !strings.Contains(err.Error(), tt.refuse) {
					t.Errorf("%s = %v, want it refused: %q", what, err, tt.refuse)
				}
			}
			if _, err := os.Stat(path); err == nil {
				t.Error("recorded under a lock file that was refused")
			}
			if after, afterErr := os.ReadFile(elsewhere); string(after) != string(before) || (afterErr == nil) != (beforeErr == nil) {
				t.Errorf("the link's target changed: %q, %v; was %q, %v", after, afterErr, before, beforeErr)
			}
		})
	}
}

// hold takes an exclusive flock on name from a descriptor of its own,
// as another process would, creating a missing file; it returns its
// release, also called when the test ends.
func hold(t *testing.T, name string) func() {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		f, err = os.Open(name) // a directory
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() { once.Do(func() { f.Close() }) }
	t.Cleanup(release)
	return release
}

// signal closes ch the first time a log line contains text.
type signal struct {
	t    *testing.T
	text string
	once sync.Once
	ch   chan struct{}
}

func (s *signal) Write(b []byte) (int, error) {
	s.t.Log(strings.TrimSpace(string(b)))
	if strings.Contains(string(b), s.text) {
		s.once.Do(func() { close(s.ch) })
	}
	return len(b), nil
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func peerPin(t *testing.T, r *verify.Request) pin.Pin {
	t.Helper()
	_, p, _, verdict := New(nil).peer(r)
	if verdict != nil {
		t.Fatal(verdict.Reason)
	}
	return p
}
