package tofu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
	"github.com/tlspin/tlspin/verifiers/internal/vtest"
)

// TestRecordsOfOneProcessTakeTurns: two first uses committed at once by
// one verifier (a server meeting two new clients) each took the pins
// file's lock on a descriptor of its own, so the second found it taken
// and warned that "another process holds the lock" when none did; it then
// polled for it. Records of one verifier now take turns before the file's
// lock, which only other processes contend for.
func TestRecordsOfOneProcessTakeTurns(t *testing.T) {
	var logs syncbuf.Buffer
	path := filepath.Join(t.TempDir(), "known")
	v := New(hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug}))
	if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{"file": {path}}}); err != nil {
		t.Fatal(err)
	}
	// A record that holds the lock a while: it waits for a file written
	// in place a moment ago to settle.
	v.settleFor = 500 * time.Millisecond
	if !vtest.Handshake(t, v, req(vtest.New(t, vtest.Spec{CN: "first"}), "127.0.0.1:1")).Allow {
		t.Fatal("first use rejected")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(data, "# edited in place\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	a, b := req(vtest.New(t, vtest.Spec{CN: "a"}), "127.0.0.1:2"), req(vtest.New(t, vtest.Spec{CN: "b"}), "127.0.0.1:3")
	for _, r := range []*verify.Request{a, b} {
		if got := vtest.Verify(t, v, r); !got.Allow || !got.Commit {
			t.Fatalf("first use: %+v", got)
		}
	}
	var wg sync.WaitGroup
	commit := func(r *verify.Request) {
		defer wg.Done()
		if _, err := v.Commit(context.Background(), r); err != nil {
			t.Errorf("commit: %v", err)
		}
	}
	wg.Add(2)
	go commit(a)
	if !wait.Until(5*time.Second, func() bool { return flocked(t, path+lockSuffix) }) {
		t.Fatal("the first record never took the lock")
	}
	go commit(b)
	wg.Wait()
	if strings.Contains(logs.String(), "another process holds the lock") {
		t.Errorf("a record waiting for another of the same verifier blamed another process:\n%s", logs.String())
	}
	for _, cn := range []string{"127.0.0.1:2", "127.0.0.1:3"} {
		if data, _ := os.ReadFile(path); !bytes.Contains(data, []byte(cn+" ")) {
			t.Errorf("%s not recorded:\n%s", cn, data)
		}
	}
}

// flocked reports whether /proc/locks lists a lock on the file name.
func flocked(t *testing.T, name string) bool {
	var st syscall.Stat_t
	if err := syscall.Stat(name, &st); err != nil {
		return false
	}
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Skip("no /proc/locks:", err)
	}
	return bytes.Contains(locks, fmt.Appendf(nil, ":%d ", st.Ino))
}
