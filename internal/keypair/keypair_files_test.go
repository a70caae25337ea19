package keypair

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/internal/syncbuf"
)

// TestReloadRefusesWhatIsNotAFile: a --cert renewed into something that
// is not a small regular file (a FIFO, as `--cert <(...)` or a mistaken
// mkfifo leaves; a huge file written over it by mistake) is refused at
// once and the pair in use stays. Reload used to open the FIFO and wait
// for a writer for good, holding the lock every later reload and the
// watch need: the next SIGHUP then hung, and with it serve's and the
// proxy's exit on SIGTERM; a huge file was read whole into memory.
func TestReloadRefusesWhatIsNotAFile(t *testing.T) {
	for _, tt := range []struct {
		name string
		make func(t *testing.T, path string)
	}{
		{"FIFO", func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
		}},
		{"symlink to a FIFO", func(t *testing.T, path string) {
			fifo := path + ".fifo"
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			if err := os.Symlink(fifo, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{"huge file", func(t *testing.T, path string) {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// Sparse: nothing written, 64 MiB of zeros to read.
			if err := f.Truncate(64 << 20); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "cert.pem")
			if err := os.WriteFile(file, pairPEM(t, "old"), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(file, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			tt.make(t, file)
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			done := make(chan error, 1)
			go func() { done <- c.Reload() }()
			select {
			case err = <-done:
			case <-time.After(2 * time.Second):
				// Let the reload go: a writer that closes at once.
				if w, werr := os.OpenFile(file, os.O_WRONLY|syscall.O_NONBLOCK, 0); werr == nil {
					w.Close()
				}
				<-done
				t.Fatal("Reload still waiting after 2s")
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("Reload succeeded")
			}
			t.Logf("Reload: %v", err)
			if got := c.Current().Leaf.Subject.CommonName; got != "old" {
				t.Errorf("serving %q after a failed reload, want old", got)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Errorf("Reload allocated %d MiB", grew>>20)
			}
		})
	}
}

// TestWarnsOfAKeyOthersMayRead: a private key that other users may read
// (written by cat > or cp with the usual umask: the recipe's server.pem,
// certificate and key in one file) is theirs to impersonate the server
// with; serve and proxy used it without a word. Loading it now warns,
// naming the file that holds the key. A key its group may read is left
// alone: Debian's ssl-cert group shares keys so.
func TestWarnsOfAKeyOthersMayRead(t *testing.T) {
	const warning = "readable by other users"
	for _, tt := range []struct {
		name      string
		certMode  os.FileMode
		keyMode   os.FileMode // 0: the key is in the certificate's file
		warnNames string      // "cert" or "key": the file named; "" for no warning
	}{
		{"key with the certificate, 0644", 0o644, 0, "cert"},
		{"key with the certificate, 0600", 0o600, 0, ""},
		{"key with the certificate, 0640", 0o640, 0, ""},
		{"key apart, 0644", 0o644, 0o644, "key"},
		{"key apart, 0600; the certificate 0644", 0o644, 0o600, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			names := map[string]string{"cert": filepath.Join(dir, "cert.pem"), "key": ""}
			pair := pairPEM(t, "server")
			write := func(path string, mode os.FileMode) {
				if err := os.WriteFile(path, pair, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, mode); err != nil {
					t.Fatal(err)
				}
			}
			write(names["cert"], tt.certMode)
			if tt.keyMode != 0 {
				names["key"] = filepath.Join(dir, "key.pem")
				write(names["key"], tt.keyMode)
			}
			var logs syncbuf.Buffer
			if _, err := Load(names["cert"], names["key"], hclog.New(&hclog.LoggerOptions{Output: &logs})); err != nil {
				t.Fatal(err)
			}
			got := logs.String()
			switch {
			case tt.warnNames == "" && strings.Contains(got, warning):
				t.Errorf("warned: %s", got)
			case tt.warnNames != "" && (!strings.Contains(got, warning) || !strings.Contains(got, names[tt.warnNames]+" holds")):
				t.Errorf("logged %q, want a warning that %s is %s", got, names[tt.warnNames], warning)
			}
		})
	}
}
