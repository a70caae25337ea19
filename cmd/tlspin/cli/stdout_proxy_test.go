package cli_test

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// brokenStdouts are the stdouts that fail: a full disk, every write
// ENOSPC; a pipe whose reader is gone (| head -1 done), every write
// EPIPE and, unless caught, SIGPIPE. Each returns the file for the child
// and what the error says.
var brokenStdouts = []struct {
	name string
	open func(t *testing.T) *os.File
	says string
}{
	{"full_disk", func(t *testing.T) *os.File {
		f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
		if err != nil {
			t.Skipf("no /dev/full: %v", err)
		}
		return f
	}, "no space left on device"},
	{"reader_gone", func(t *testing.T) *os.File {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		return w
	}, "broken pipe"},
}

// TestProxyJSONStdoutFails: proxy --json whose stdout fails lost its
// events silently and, stopped by SIGTERM, exited 0 (a full disk), or was
// killed by SIGPIPE, cutting every connection (a reader gone). It warns
// once, goes on proxying, and exits 1 at the end naming the error, even
// after SIGTERM.
func TestProxyJSONStdoutFails(t *testing.T) {
	srvFile, _ := identityFile(t, t.TempDir(), "server")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echo := e2e.Serve(t, ln, func(c net.Conn) { io.Copy(c, c) })
	for _, tt := range brokenStdouts {
		t.Run(tt.name, func(t *testing.T) {
			out := tt.open(t)
			cmd := exec.Command(testbin.Tlspin(t), "--log-level", "info", "proxy", "server", "--json", "--listen", "127.0.0.1:0", "--target", echo, "--cert", srvFile)
			cmd.Stdout = out
			p := startLogged(t, cmd)
			out.Close()
			addr := proxyListening.FindStringSubmatch(p.logged(t, "listening: addr="))[1]
			for i := 1; i <= 3; i++ {
				c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
				if err != nil {
					t.Fatalf("connection %d: %v\n%s", i, err, p.stderr.String())
				}
				echoThrough(t, c, "hello")
				c.Close()
			}
			if !wait.Until(10*time.Second, func() bool { return strings.Count(p.stderr.String(), "closed: conn=") == 3 }) {
				t.Fatalf("not every connection closed:\n%s", p.stderr.String())
			}
			if n := strings.Count(p.stderr.String(), "events are lost"); n != 1 {
				t.Errorf("%d warnings about lost events, want 1:\n%s", n, p.stderr.String())
			}
			p.cmd.Process.Signal(syscall.SIGTERM)
			if code := p.exit(t, "SIGTERM"); code != cli.ExitFailure {
				t.Errorf("exit %d, want %d", code, cli.ExitFailure)
			}
			if s := p.stderr.String(); !strings.Contains(s, "tlspin: proxy: ") || !strings.Contains(s, tt.says) {
				t.Errorf("the last error does not name stdout's (%q):\n%s", tt.says, s)
			}
		})
	}
}

// TestServeStdoutReaderGone: tlspin serve | head -1 ended serve by
// SIGPIPE (exit 141 in a shell) once head was done. serve prints what it
// receives, so a gone reader is a stdout that fails, as a full disk: the
// client is reset, and serve exits 1 naming the error.
func TestServeStdoutReaderGone(t *testing.T) {
	srvFile, pin := identityFile(t, t.TempDir(), "server")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	cmd := exec.Command(testbin.Tlspin(t), "--log-level", "info", "serve", "--listen", "127.0.0.1:0", "--cert", srvFile)
	cmd.Stdout = w
	p := startLogged(t, cmd)
	w.Close()
	addr := proxyListening.FindStringSubmatch(p.logged(t, "listening: addr="))[1]
	if _, stderr, code := run(t, "send", "--verifier", "spkipin", "--pin", pin, addr, "a line"); code == cli.ExitOK {
		t.Errorf("send exited 0, its line lost:\n%s", stderr)
	}
	if code := p.exit(t, "send"); code != cli.ExitFailure {
		t.Errorf("serve exited %d, want %d", code, cli.ExitFailure)
	}
	if s := p.stderr.String(); !strings.Contains(s, "broken pipe") {
		t.Errorf("serve's stderr does not name the error:\n%s", s)
	}
}

// TestServeStdoutFailsThenSIGTERM: serve whose stdout failed stops by
// itself, letting open connections finish within --grace; a SIGTERM
// meanwhile (systemd stopping it) hid the failure: exit 143, nothing
// said. The failed stdout is the news: exit 1, naming it.
func TestServeStdoutFailsThenSIGTERM(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	srvFile, _ := identityFile(t, t.TempDir(), "server")
	cmd := exec.Command(testbin.Tlspin(t), "--log-level", "info", "serve", "--listen", "127.0.0.1:0", "--cert", srvFile, "--grace", "2s")
	cmd.Stdout = full
	p := startLogged(t, cmd)
	addr := proxyListening.FindStringSubmatch(p.logged(t, "listening: addr="))[1]
	open, _ := dialLeaf(t, addr) // held open: serve waits for it within --grace
	defer open.Close()
	c, _ := dialLeaf(t, addr)
	defer c.Close()
	io.WriteString(c, "a line\n")
	p.logged(t, "letting open connections finish")
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exit(t, "SIGTERM"); code != cli.ExitFailure {
		t.Errorf("exit %d, want %d", code, cli.ExitFailure)
	}
	if s := p.stderr.String(); !strings.Contains(s, "tlspin: server: cannot write to the output") {
		t.Errorf("the last error does not name stdout's:\n%s", s)
	}
}
