//go:build unix

package files_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/files"
)

// TestReadGiven: a file an operator names is read without waiting for a
// writer. A named pipe that no program has open for writing (a mistaken
// mkfifo) used to hang the command for good, SIGTERM unheard; one with a
// writer (`--cert <(...)`) is read to its end; with regularOnly any pipe
// is refused; a file over the bound is refused.
func TestReadGiven(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(regular, []byte("PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := func(t *testing.T) string {
		p := filepath.Join(t.TempDir(), "fifo")
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		return p
	}
	// A pipe as the shell's <(...) gives: /dev/fd/N, its writer open. The
	// writer writes and closes before or after the read starts; either
	// way the read gets all of it.
	withWriter := func(t *testing.T) string {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		go func() {
			defer w.Close()
			w.Write([]byte("PEM"))
		}()
		return fmt.Sprintf("/dev/fd/%d", r.Fd())
	}
	for _, tt := range []struct {
		name        string
		path        func(*testing.T) string
		max         int64
		regularOnly bool
		want        string // the contents, or what the error says
		ok          bool
	}{
		{"regular file", func(*testing.T) string { return regular }, 10, false, "PEM", true},
		{"regular file, regular only", func(*testing.T) string { return regular }, 10, true, "PEM", true},
		{"larger than max", func(*testing.T) string { return regular }, 2, false, "larger than 2 bytes", false},
		{"named pipe without a writer", fifo, 10, false, "a named pipe that no program writes to", false},
		{"pipe with a writer", withWriter, 10, false, "PEM", true},
		{"named pipe, regular only", fifo, 10, true, "not a regular file", false},
		{"missing", func(*testing.T) string { return filepath.Join(dir, "nope") }, 10, false, "no such file", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path(t)
			type result struct {
				data []byte
				err  error
			}
			done := make(chan result, 1)
			go func() {
				data, err := files.ReadGiven(path, tt.max, tt.regularOnly)
				done <- result{data, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("ReadGiven still waiting after 10s")
			}
			switch {
			case tt.ok && (r.err != nil || string(r.data) != tt.want):
				t.Errorf("ReadGiven = %q, %v; want %q", r.data, r.err, tt.want)
			case !tt.ok && (r.err == nil || !strings.Contains(r.err.Error(), tt.want)):
				t.Errorf("ReadGiven = %q, %v; want an error saying %q", r.data, r.err, tt.want)
			}
		})
	}
}
