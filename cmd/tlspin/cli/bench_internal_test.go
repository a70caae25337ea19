package cli

import (
	"context"
	"crypto/tls"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/e2e"
)

// TestSClientSkipsCAStore: the one-shot's openssl s_client handshakes
// without reading the system's CA certificates, as fingerprint does
// without them. The CA file, and in the CA directory the file named for
// the server's issuer, are named pipes nobody writes to: an s_client
// that reads either waits there until it is killed.
func TestSClientSkipsCAStore(t *testing.T) {
	openssl := e2e.NeedOpenSSL(t)
	dir := t.TempDir()
	id := e2e.NewIdentity(t, dir, "server")
	addr := e2e.ServeTLS(t, id.Cert, func(c *tls.Conn) {
		_ = c.Handshake()
		_, _ = io.Copy(io.Discard, c)
	})
	hash, err := exec.Command(openssl, "x509", "-noout", "-subject_hash", "-in", id.File).Output()
	if err != nil {
		t.Fatalf("openssl x509 -subject_hash: %v", err)
	}
	pipe, empty, caDir := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "empty.pem"), filepath.Join(dir, "certs")
	if err := os.Mkdir(caDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pipe, filepath.Join(caDir, strings.TrimSpace(string(hash))+".0")} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	plain := []string{openssl, "s_client", "-connect", addr, "-servername", "server"}
	for _, tt := range []struct {
		name        string
		argv        []string
		file, cadir string // SSL_CERT_FILE, SSL_CERT_DIR
		hangs       bool
	}{
		// Without these two, a pass below would prove nothing: they show
		// that each pipe holds an s_client that reads the store.
		{"a plain s_client reads the CA file", plain, pipe, dir, true},
		{"a plain s_client reads the CA directory", plain, empty, caDir, true},
		{"the one-shot's s_client", sClientArgs(openssl, addr, "server")[0], pipe, caDir, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wait := 10 * time.Second
			if tt.hangs {
				wait = time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			cmd := exec.CommandContext(ctx, tt.argv[0], tt.argv[1:]...)
			cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+tt.file, "SSL_CERT_DIR="+tt.cadir)
			out, err := cmd.CombinedOutput()
			switch hung := ctx.Err() != nil; {
			case hung && !tt.hangs:
				t.Fatalf("%v still waiting after %s, on the CA certificates: %s", tt.argv, wait, out)
			case !hung && tt.hangs:
				t.Fatalf("%v ended (%v) without waiting on the pipe: %s", tt.argv, err, out)
			case !hung && err != nil:
				t.Fatalf("%v: %v: %s", tt.argv, err, out)
			}
		})
	}
}

// TestSClientFallsBack: an openssl without -no-CAstore (before 3.0) is
// timed without it; one that takes neither command is reported with the
// first one's error.
func TestSClientFallsBack(t *testing.T) {
	tests := []struct {
		name, script string
		store        bool   // the command chosen skips the store with -no-CAstore
		err          string // the error when none is chosen
	}{
		{"OpenSSL 3", "#!/bin/sh\nexit 0\n", true, ""},
		{"OpenSSL 1.1", "#!/bin/sh\nfor a; do [ \"$a\" = -no-CAstore ] && { echo \"s_client: Unknown option: -no-CAstore\" >&2; exit 1; }; done\nexit 0\n", false, ""},
		// The first command has 8 arguments, the second 7.
		{"no s_client", "#!/bin/sh\necho \"s_client: unknown option, of $# arguments\" >&2\nexit 1\n", false, "of 8 arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := filepath.Join(t.TempDir(), "openssl")
			if err := os.WriteFile(fake, []byte(tt.script), 0o755); err != nil {
				t.Fatal(err)
			}
			argv, err := sClient(context.Background(), fake, "127.0.0.1:1", "server")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("sClient = %q, %v; want an error with %q", argv, err, tt.err)
				}
				return
			}
			if err != nil || argv[0] != fake || !slices.Contains(argv, "-no-CAfile") || slices.Contains(argv, "-no-CAstore") != tt.store {
				t.Fatalf("sClient = %q, %v; want -no-CAfile, and -no-CAstore: %v", argv, err, tt.store)
			}
		})
	}
}
