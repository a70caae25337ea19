//go:build unix

package cli_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/testbin"
)

// TestNamedPipeWithoutAWriter: a certificate file that is a named pipe no
// program writes to (a mistaken mkfifo) made serve, send, verify,
// fingerprint, compare (--ref, --ref-key, --ref-ca, --cert) and
// --plugin-checksums wait for a writer for good, a first SIGTERM unheard.
// They now say so at once.
// A pipe with a writer, as the shell's <(...) gives, still reads.
func TestNamedPipeWithoutAWriter(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "cert.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	certFile := filepath.Join(dir, "real.pem")
	if _, stderr, code := inProcess(t, "", "cert", "--out", certFile); code != 0 {
		t.Fatalf("cert: exit %d: %s", code, stderr)
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	fingerprint, stderr, code := inProcess(t, "", "fingerprint", certFile)
	if code != 0 || fingerprint == "" {
		t.Fatalf("fingerprint of the file: exit %d: %s", code, stderr)
	}
	for _, tt := range []struct {
		name string
		args []string
		pipe bool // fd 3 is a pipe with a writer, the certificate on it
		want string
		code int
	}{
		{"serve", []string{"serve", "--cert", fifo, "--listen", "127.0.0.1:0"}, false, "named pipe that no program writes to", 2},
		{"fingerprint", []string{"fingerprint", fifo}, false, "named pipe that no program writes to", 2},
		{"send --cert", []string{"send", "--cert", fifo, "--verifier", "tofu", "127.0.0.1:9", "hello"}, false, "named pipe that no program writes to", 2},
		{"verify", []string{"verify", "--verifier", "tofu", fifo}, false, "named pipe that no program writes to", 2},
		{"compare --ref", []string{"compare", "--ref", fifo}, false, "named pipe that no program writes to", 2},
		{"compare --ref-key", []string{"compare", "--ref", certFile, "--ref-key", fifo}, false, "named pipe that no program writes to", 2},
		{"compare --ref-ca", []string{"compare", "--ref", certFile, "--ref-ca", fifo}, false, "named pipe that no program writes to", 2},
		{"compare --cert", []string{"compare", "--cert", fifo}, false, "named pipe that no program writes to", 2},
		// A trust file: regular files only, so a pipe is refused whoever writes it.
		{"--plugin-checksums", []string{"--plugin-checksums", fifo, "send", "--verifier", "tofu", "127.0.0.1:9", "hello"}, false, "is not a regular file", 2},
		{"fingerprint of <(...)", []string{"fingerprint", "/dev/fd/3"}, true, fingerprint, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, testbin.Tlspin(t), append([]string{"--log-level", "error"}, tt.args...)...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if tt.pipe {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				cmd.ExtraFiles = []*os.File{r}
				go func() {
					defer w.Close()
					w.Write(pem)
				}()
			}
			cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("tlspin %s still waiting after 30s: %s", strings.Join(tt.args, " "), out.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != tt.code || !strings.Contains(out.String(), tt.want) {
				t.Errorf("exit %d: %s\nwant exit %d, saying %q", code, out.String(), tt.code, tt.want)
			}
		})
	}
}
