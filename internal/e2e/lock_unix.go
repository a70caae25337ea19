//go:build unix

package e2e

import (
	"os"
	"syscall"
	"testing"
)

// HoldTofuLock takes the lock of the tofu store pins, as another tlspin
// recording would, until the test ends or release is called: a first use
// allowed meanwhile waits for it to record.
func HoldTofuLock(t testing.TB, pins string) (release func()) {
	t.Helper()
	f, err := os.OpenFile(pins+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return func() { f.Close() }
}
