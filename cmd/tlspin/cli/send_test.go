package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// httpish runs a loopback TLS server that answers a request with an
// HTTP response; with hold, it then keeps the connection open until the
// test ends. It returns the address and the certificate's SPKI pin.
func httpish(t *testing.T, hold bool) (string, string) {
	t.Helper()
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "httpish"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{c.Raw}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(conn)
				for {
					l, err := br.ReadString('\n')
					if err != nil || l == "\r\n" {
						break
					}
				}
				io.WriteString(conn, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from the server\n")
				if hold {
					<-stop
				}
			}()
		}
	}()
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return ln.Addr().String(), "sha256//" + base64.StdEncoding.EncodeToString(sum[:])
}

func TestSendPrintsReply(t *testing.T) {
	tests := []struct {
		name  string
		hold  bool
		extra []string
		want  string
	}{
		{"server closes after its reply", false, nil, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from the server\n"},
		{"server keeps the connection open", true, []string{"--idle-timeout", "300ms"}, "hello from the server\n"},
		{"--no-reply", false, []string{"--no-reply"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, pin := httpish(t, tc.hold)
			start := time.Now()
			args := append([]string{"send", "--verifier", "spkipin", "--pin", pin}, tc.extra...)
			stdout, stderr, code := run(t, append(args, addr, "GET / HTTP/1.0\r\n\r\n")...)
			if code != cli.ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if tc.want == "" && stdout != "" || !strings.HasSuffix(stdout, tc.want) {
				t.Errorf("stdout %q, want the reply %q", stdout, tc.want)
			}
			if d := time.Since(start); tc.hold && d > 10*time.Second {
				t.Errorf("send took %s against a server holding the connection", d)
			}
		})
	}
}

// MD5 and SHA-1 pins work, as the recipe needs, with a warning on stderr
// named once by the verifier that gives it; a sound digest gives none.
// The pin is taken from the live server as the recipe does.
func TestSendWarnsOfWeakDigests(t *testing.T) {
	addr, _ := httpish(t, false)
	tests := []struct {
		verifier, algo string
		warning        string // "" for none
	}{
		{"md5pin", "md5", "[WARN]  md5pin: MD5 pins are weak: MD5 is collision-broken; prefer sha256pin, or spkipin"},
		{"sha256pin", "sha256", ""},
		{"spkipin", "spki", ""},
	}
	for _, tc := range tests {
		t.Run(tc.verifier, func(t *testing.T) {
			fp, stderr, code := run(t, "fingerprint", "--algo", tc.algo, addr)
			if code != cli.ExitOK {
				t.Fatalf("fingerprint: exit %d: %s", code, stderr)
			}
			_, stderr, code = run(t, "--log-level", "warn", "send", "--no-reply", "--verifier", tc.verifier, "--pin", strings.TrimSpace(fp), addr, "GET / HTTP/1.0\r\n\r\n")
			if code != cli.ExitOK {
				t.Fatalf("send: exit %d: %s", code, stderr)
			}
			if got := strings.Count(stderr, "pins are weak"); tc.warning == "" && got != 0 || tc.warning != "" && (got != 1 || !strings.Contains(stderr, tc.warning)) {
				t.Errorf("stderr %q; want the warning %q once", stderr, tc.warning)
			}
			if strings.Contains(stderr, tc.verifier+": "+tc.verifier) {
				t.Errorf("stderr %q names the verifier twice", stderr)
			}
		})
	}
}

// A typo in a built-in's options, a malformed pin, chain or expiry date,
// or a missing, unreadable or small malformed file, is refused before
// anything reaches the server (the plugins start while the handshake
// runs, so this is checked first, in process, against what the built-in
// declares and parses); what is in a large file only the verifier judges,
// with the connection's handshake aborted and no byte of the message sent.
func TestSendRefusesBadOptionsFirst(t *testing.T) {
	testbin.Tlspin(t) // built before anything is timed
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int32
	var got syncbuf.Buffer
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(io.LimitReader(c, 1<<16))
				got.Write(b)
			}()
		}
	}()
	addr := ln.Addr().String()
	garbage, bigGarbage := filepath.Join(t.TempDir(), "list"), filepath.Join(t.TempDir(), "big-list")
	if err := os.WriteFile(garbage, []byte("not a pin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// More than the 64 KiB a check before connecting reads.
	if err := os.WriteFile(bigGarbage, []byte(strings.Repeat("# a comment\n", 6000)+"not a pin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badCA := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(badCA, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		args       []string
		says       string
		mayConnect bool
	}{
		{"missing option", []string{"--verifier", "md5pin"}, `option "pin": md5pin requires it`, false},
		{"unknown option", []string{"--verifier", "md5pin:pin=00112233445566778899aabbccddeeff,pni=x"}, `"pni"`, false},
		{"malformed md5 pin", []string{"--verifier", "md5pin", "--pin", "nothex"}, `option pin="nothex": pin: malformed pin`, false},
		{"malformed spki pin", []string{"--verifier", "spkipin:pin=abc"}, `option pin="abc": pin: malformed pin`, false},
		{"a backup pin malformed", []string{"--verifier", "sha256pin:pin=" + strings.Repeat("ab", 32) + ",pin=xyz"}, `option pin="xyz"`, false},
		{"bad chain", []string{"--verifier", "sha256pin:pin=" + strings.Repeat("ab", 32) + ",chain=sideways"}, `option chain="sideways": want leaf, any or ca`, false},
		{"bad expiry", []string{"--verifier", "sha256pin:pin=" + strings.Repeat("ab", 32) + ",expires=tomorrow"}, `option expires="tomorrow": want a date`, false},
		{"a missing allowlist", []string{"--verifier", "allowlist:file=" + filepath.Join(t.TempDir(), "none")}, "no such file", false},
		{"a directory for an allowlist", []string{"--verifier", "allowlist:file=" + t.TempDir()}, "is a directory", false},
		{"a missing CA file", []string{"--verifier", "ca:ca-file=" + filepath.Join(t.TempDir(), "none.pem")}, "no such file", false},
		{"a malformed allowlist", []string{"--verifier", "allowlist:file=" + garbage}, `list:1: "not": want ALGO:VALUE`, false},
		{"a malformed CA file", []string{"--verifier", "ca:ca-file=" + badCA}, `option ca-file="` + badCA, false},
		{"a large malformed allowlist, which only the verifier reads", []string{"--verifier", "allowlist:file=" + bigGarbage}, `big-list:6001: "not": want ALGO:VALUE`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := conns.Load()
			start := time.Now()
			_, stderr, code := run(t, append(append([]string{"send"}, tc.args...), addr, "SECRET-MESSAGE")...)
			// The server never answers: the error must not wait for it.
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the error took %s", d)
			}
			if code != 2 || !strings.Contains(stderr, tc.says) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.says)
			}
			if tc.mayConnect {
				return
			}
			// A connection of our own, accepted after any the command made.
			sentinel, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			sentinel.Close()
			if !wait.Until(5*time.Second, func() bool { return conns.Load() > before }) {
				t.Fatal("the sentinel connection was never accepted")
			}
			if n := conns.Load() - before; n != 1 {
				t.Errorf("the server got %d connections for a bad option; want none but the test's own", n-1)
			}
		})
	}
	if strings.Contains(got.String(), "SECRET-MESSAGE") {
		t.Fatal("the message reached the server")
	}
}

// recordingTLS runs a loopback TLS server that serves one connection at a
// time and sends, for each, what it read before the client closed (or
// before its handshake failed), in the order they were accepted.
func recordingTLS(t *testing.T) (string, <-chan []byte) {
	t.Helper()
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "recording"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{c.Raw}, PrivateKey: key}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	reads := make(chan []byte, 16)
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			rec := &recordingConn{Conn: raw}
			raw.SetDeadline(time.Now().Add(10 * time.Second))
			conn := tls.Server(rec, cfg)
			if conn.Handshake() == nil {
				io.Copy(io.Discard, conn)
			}
			raw.Close()
			reads <- rec.read.Bytes()
		}
	}()
	return ln.Addr().String(), reads
}

// recordingConn keeps every byte read from it.
type recordingConn struct {
	net.Conn
	read bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Write(p[:n])
	return n, err
}

// An external verifier's options only its plugin's Configure judges, and
// it runs while send dials: a bad option must end the connection before
// the ClientHello, so that the server sees a connection closed with
// nothing on it, not a handshake aborted with an alert that it logs as
// "client refused our certificate".
func TestSendExternalBadOptionsReachNoServer(t *testing.T) {
	dir := misbehaveDir(t)
	plugin := filepath.Join(dir, "tlspin-verifier-misbehave")
	addr, reads := recordingTLS(t)
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"unknown option", []string{"--verifier", "misbehave:mode=allow,bogus=1"}, `option "bogus": misbehave does not take this option`},
		{"missing option", []string{"--verifier", "misbehave"}, `option "mode": misbehave requires it`},
		{"given as a path", []string{"--verifier", plugin + ":mode=allow,bogus=1"}, `option "bogus"`},
		{"beside a built-in", []string{"--verifier", "spkipin:pin=sha256//" + strings.Repeat("A", 43) + "=", "--verifier", "misbehave:bogus=1"}, `option "bogus"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--plugin-dir", dir, "send"}, tc.args...)
			_, stderr, code := run(t, append(args, addr, "SECRET-MESSAGE")...)
			if code != 2 || !strings.Contains(stderr, tc.says) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.says)
			}
			// A connection of our own, accepted after any the command made.
			sentinel, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			mark := "sentinel of " + tc.name
			sentinel.Write([]byte(mark))
			sentinel.Close()
			for {
				select {
				case b := <-reads:
					if string(b) == mark {
						return
					}
					if len(b) > 0 {
						t.Errorf("the server read %d bytes (%q...) from send; want none", len(b), b[:min(len(b), 8)])
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the sentinel connection was never served")
				}
			}
		})
	}
}

// An external verifier whose plugin takes longer to start than --timeout
// is still given its start (bounded by --plugin-start-timeout): --timeout
// is for the connect and the handshake, and the wait for the plugin before
// the ClientHello is neither. It used to leave the handshake a negative
// time ("did not finish within -0.5s").
func TestSendSlowExternalPluginStart(t *testing.T) {
	plugin := filepath.Join(misbehaveDir(t), "tlspin-verifier-misbehave")
	dir := t.TempDir()
	slow := filepath.Join(dir, "tlspin-verifier-slow")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nsleep 1.5\nexec "+plugin+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	addr, reads := recordingTLS(t)
	_, stderr, code := run(t, "--plugin-dir", dir, "send", "--timeout", "1s", "--verifier", "slow:mode=allow", addr, "hi")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	<-reads
}

// A server that resets the connection once it has the whole message and
// our close_notify: send exits 5, not 1, saying the message was sent and
// not to resend it blindly. A bad --half-close is a usage error.
func TestSendResetAfterMessage(t *testing.T) {
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "resetter"})
	if err != nil {
		t.Fatal(err)
	}
	addr := e2e.ServeTLS(t, tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key}, func(conn *tls.Conn) {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, conn) // to our close_notify
		conn.NetConn().(*net.TCPConn).SetLinger(0)
		conn.NetConn().Close() // a reset
	})
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	pin := "sha256//" + base64.StdEncoding.EncodeToString(sum[:])
	for _, tc := range []struct {
		mode string
		code int
		says string
	}{
		{"auto", cli.ExitResetAfterSend, "sending it again may deliver it twice; for a server that answers\n  and closes without reading to the end, --half-close never keeps our side open"},
		{"always", cli.ExitResetAfterSend, "the server reset the connection after the whole message was sent: it closed without reading all we sent (at least our close_notify), so whether it read the message is unknown, and its reply, if any, was lost"},
		{"sometimes", cli.ExitUsage, `--half-close "sometimes": want always, auto or never`},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			_, stderr, code := run(t, "send", "--half-close", tc.mode, "--verifier", "spkipin", "--pin", pin, addr, "hi")
			if code != tc.code || !strings.Contains(stderr, tc.says) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.says)
			}
		})
	}
}

// TestSendAbortsAnUnfinishedMessage: a send that gives up on its message
// before the end (standard input fails, or the command is interrupted,
// as SIGINT cancels its context) resets the connection, so that the
// server sees an error, never a clean end it could take for the whole
// message. It used to end with close_notify, a clean EOF at the server
// after half the message. A message sent whole still ends with one.
// send runs in process, so that its standard input can fail and its
// context be cancelled; its plugins run from the tlspin binary.
func TestSendAbortsAnUnfinishedMessage(t *testing.T) {
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "reader"})
	if err != nil {
		t.Fatal(err)
	}
	type ending struct {
		got string
		err error
	}
	arrived := make(chan string, 16) // what the server has read so far
	ends := make(chan ending, 1)
	addr := e2e.ServeTLS(t, tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key}, func(conn *tls.Conn) {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		var got []byte
		buf := make([]byte, 1024)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				got = append(got, buf[:n]...)
				arrived <- string(got)
			}
			if err != nil {
				ends <- ending{string(got), err}
				return
			}
		}
	})
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	pin := "sha256//" + base64.StdEncoding.EncodeToString(sum[:])
	const half = "first half, "
	for _, tc := range []struct {
		name      string
		rest      io.Reader // what standard input gives after the first half
		interrupt bool      // cancel the command once the server has the first half
		clean     bool      // the server sees the end of the message (EOF)
	}{
		{"whole message", strings.NewReader("second\n"), false, true},
		{"standard input fails", iotest.ErrReader(syscall.EIO), false, false},
		{"interrupted", nil, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rest := tc.rest
			if rest == nil { // a pipe that stays open, with nothing more in it
				pr, pw := io.Pipe()
				defer pw.Close()
				rest = pr
			}
			var stdout, stderr syncbuf.Buffer
			env := cli.Env{Stdin: io.MultiReader(strings.NewReader(half), rest), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Self: testbin.Tlspin(t)}
			codes := make(chan int, 1)
			go func() {
				codes <- cli.RunContext(ctx, env, []string{"--log-level", "error", "send", "--verifier", "spkipin", "--pin", pin, addr})
			}()
			if tc.interrupt {
				for got := ""; got != half; {
					select {
					case got = <-arrived:
					case <-time.After(10 * time.Second):
						t.Fatalf("the server got %q of the message, want %q", got, half)
					}
				}
				cancel()
			}
			var end ending
			select {
			case end = <-ends:
			case <-time.After(20 * time.Second):
				t.Fatalf("the server's read never ended; stderr:\n%s", stderr.String())
			}
			for len(arrived) > 0 {
				<-arrived
			}
			var code int
			select {
			case code = <-codes:
			case <-time.After(20 * time.Second):
				t.Fatalf("send still runs 20s after the server's read ended; stderr:\n%s", stderr.String())
			}
			switch {
			case tc.clean && (end.err != io.EOF || end.got != half+"second\n"):
				t.Fatalf("the server read %q, then %v; want the whole message, then EOF (exit %d, stderr %q)", end.got, end.err, code, stderr.String())
			case tc.clean && code != cli.ExitOK:
				t.Fatalf("exit %d: %s", code, stderr.String())
			case !tc.clean && !errors.Is(end.err, syscall.ECONNRESET):
				t.Fatalf("the server read %q, then %v; want a reset, never a clean end (exit %d, stderr %q)", end.got, end.err, code, stderr.String())
			case !tc.clean && code == cli.ExitOK:
				t.Fatalf("exit 0 for a message not sent whole; stderr %q", stderr.String())
			}
		})
	}
}
