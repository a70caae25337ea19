//go:build unix

package tofu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// lockSuffix names the lock file next to a pins file: PINS.lock.
const lockSuffix = ".lock"

// lockWait is the longest lock waits, whatever its context allows.
const lockWait = 10 * time.Second

// lock takes the exclusive lock of the pins file at path, so that tlspin
// processes sharing it record one peer at a time, and returns its
// release. The lock is a flock on path.lock, a file of this user's that
// no other user may open (mode 0600): a lock on anything another user can
// open, such as the file's directory, would let them stop tofu recording.
// It tries without blocking, again and again, until it gets the lock or
// ctx is done (or lockWait has passed), and then says which file holds it
// up. waiting, if not nil, is called once when the lock is found taken.
func lock(ctx context.Context, path string, waiting func(name string)) (func(), error) {
	name := path + lockSuffix
	f, err := openLock(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	start, delay := time.Now(), time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("tofu: lock %q: %w", name, err)
		}
		if waiting != nil {
			waiting(name)
			waiting = nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("tofu: gave up after %v waiting for the lock %q, which another process holds: %w",
				time.Since(start).Round(time.Millisecond), name, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 25*time.Millisecond)
	}
}

// openLock opens (creating it, mode 0600) the lock file name, never
// through a symbolic link, and refuses it unless it is a regular file of
// this user's.
func openLock(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		if fi, lerr := os.Lstat(name); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("tofu: lock file %q is a symbolic link, which is not followed: remove it", name)
		}
		return nil, fmt.Errorf("tofu: lock: %w", err)
	}
	fail := func(err error) (*os.File, error) {
		f.Close()
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("tofu: lock: %w", err))
	}
	if !st.Mode().IsRegular() {
		return fail(fmt.Errorf("tofu: lock file %q is not a regular file (%s): remove it", name, st.Mode().Type()))
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fail(fmt.Errorf("tofu: lock file %q belongs to uid %d, not to this user (uid %d), who could hold it and stop tofu recording: remove it", name, sys.Uid, os.Geteuid()))
	}
	// Closed to other users, who could otherwise open it and hold it.
	if st.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			return fail(fmt.Errorf("tofu: lock: %w", err))
		}
	}
	return f, nil
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
