package cli_test

import (
	"bytes"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestServeReloadsItsCertificate: serve takes a renewed --cert as the
// proxy does, on SIGHUP (the watch interval is an hour, so only the signal
// can do it) or when the file changes on disk, while an open connection
// keeps printing. SIGHUP used to end serve by its default action (exit
// 129), cutting every connection.
func TestServeReloadsItsCertificate(t *testing.T) {
	for _, tt := range []struct {
		name, watch, logged string
		hup                 bool
	}{
		{"SIGHUP", "1h", "SIGHUP: certificate reloaded", true},
		{"on disk", "20ms", "certificate reloaded from disk", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			srvFile, _ := identityFile(t, dir, "server")
			p, addr := startBG(t, proxyListening, testbin.Tlspin(t), "--log-level", "info", "serve", "--listen", "127.0.0.1:0", "--cert", srvFile, "--watch-interval", tt.watch)
			live, first := dialLeaf(t, addr)
			defer live.Close()
			io.WriteString(live, "before\n")
			identityFile(t, dir, "server") // a new pair in the same file
			if tt.hup {
				p.cmd.Process.Signal(syscall.SIGHUP)
			}
			if !wait.Until(10*time.Second, func() bool { return strings.Contains(p.stderr.String(), tt.logged) }) {
				t.Fatalf("no %q", tt.logged)
			}
			c, now := dialLeaf(t, addr)
			c.Close()
			if bytes.Equal(now, first) {
				t.Error("new connection after the reload got the old certificate")
			}
			io.WriteString(live, "after\n")
			if !wait.Until(10*time.Second, func() bool { return strings.Contains(p.stdout.String(), "after") }) {
				t.Fatalf("the open connection stopped printing after the reload:\n%s", p.stdout)
			}
			if got := p.stdout.String(); !strings.Contains(got, "before\n") {
				t.Errorf("stdout %q: want both lines", got)
			}
			live.Close()
			p.stopsCleanly(t, syscall.SIGTERM, 15*time.Second)
		})
	}
}

// TestServeStopsWhenItsCertificateIsAFIFO: a --cert replaced by a FIFO
// (a mistaken mkfifo, a tool that streams its output) is refused by the
// reload, and SIGTERM still stops serve. The reload used to wait on the
// FIFO for a writer for good, and serve's exit waited on the reload: it
// kept running after SIGTERM, until a second signal.
func TestServeStopsWhenItsCertificateIsAFIFO(t *testing.T) {
	dir := t.TempDir()
	srvFile, _ := identityFile(t, dir, "server")
	p, _ := startBG(t, proxyListening, testbin.Tlspin(t), "--log-level", "info", "serve", "--listen", "127.0.0.1:0", "--cert", srvFile, "--watch-interval", "1h")
	if err := os.Remove(srvFile); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(srvFile, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	// The reload either refuses the FIFO or waits on it: give it the
	// moment to be in either state, then stop serve.
	wait.Until(2*time.Second, func() bool { return strings.Contains(p.stderr.String(), "SIGHUP: certificate does not load") })
	p.stopsCleanly(t, syscall.SIGTERM, 5*time.Second)
	if !strings.Contains(p.stderr.String(), "SIGHUP: certificate does not load") {
		t.Errorf("the refused reload was not logged:\n%s", p.stderr)
	}
}
