// Package e2e is what tlspin's end-to-end test suites share: identities
// written as PEM files, the real tlspin binary run in the background with
// its output captured, and a look at its plugin child processes in /proc.
// Everything runs on loopback only.
package e2e

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// NeedOpenSSL returns the path of openssl, or skips the test.
func NeedOpenSSL(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	return p
}

// StartSServer runs `openssl s_server` on a free loopback port and returns
// its address and output. Its stdin stays open until the test ends (it
// quits at EOF).
func StartSServer(t *testing.T, args ...string) (string, *syncbuf.Buffer) {
	t.Helper()
	openssl := NeedOpenSSL(t)
	cmd := exec.Command(openssl, append([]string{"s_server", "-accept", "127.0.0.1:0", "-naccept", "1"}, args...)...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		once.Do(func() { stdin.Close() })
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("s_server:\n%s", out)
		}
	})
	re := regexp.MustCompile(`ACCEPT (\S+:\d+)`)
	var addr string
	if !wait.Until(10*time.Second, func() bool {
		m := re.FindStringSubmatch(out.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}) {
		t.Fatalf("s_server did not listen:\n%s", out)
	}
	return addr, out
}

// Serve accepts connections on ln until the test ends and runs handle on
// each in a goroutine of its own, closing the connection afterwards. It
// returns ln's address.
func Serve(t testing.TB, ln net.Listener, handle func(net.Conn)) string {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// ServeTLS is Serve on a loopback TLS listener presenting cert: handle
// gets each connection, its handshake not yet done.
func ServeTLS(t testing.TB, cert tls.Certificate, handle func(*tls.Conn)) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	return Serve(t, ln, func(c net.Conn) { handle(c.(*tls.Conn)) })
}

// HandshakeFrom completes a TLS handshake with addr from the loopback
// address from (127.0.0.2, say: Linux answers for all of 127/8),
// presenting cert and trusting any server, and reads until the server
// closes: in TLS 1.3 a client learns of its rejection on its first read.
func HandshakeFrom(t testing.TB, from, addr string, cert tls.Certificate) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, c)
}

// FloodFrom runs n HandshakeFrom from from, three at a time, as fast as
// the server takes them, and returns when all have ended.
func FloodFrom(t testing.TB, from, addr string, cert tls.Certificate, n int) {
	t.Helper()
	todo := make(chan struct{}, n)
	for range n {
		todo <- struct{}{}
	}
	close(todo)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for range todo {
				HandshakeFrom(t, from, addr, cert)
			}
		})
	}
	wg.Wait()
}

// Identity is a key pair written as one PEM file (key and certificate).
type Identity struct {
	File string
	Cert tls.Certificate
	Leaf *x509.Certificate
}

func (id Identity) SHA256() string {
	s := sha256.Sum256(id.Leaf.Raw)
	return hex.EncodeToString(s[:])
}

func (id Identity) SPKI() string {
	s := sha256.Sum256(id.Leaf.RawSubjectPublicKeyInfo)
	return "sha256//" + base64.StdEncoding.EncodeToString(s[:])
}

func (id Identity) MD5() string {
	out, err := exec.Command("openssl", "x509", "-noout", "-fingerprint", "-md5", "-in", id.File).Output()
	if err == nil {
		_, v, _ := strings.Cut(strings.TrimSpace(string(out)), "=")
		return strings.ToLower(strings.ReplaceAll(v, ":", ""))
	}
	return ""
}

// NewIdentity makes a self-signed ECDSA Identity in dir.
func NewIdentity(t testing.TB, dir, name string) Identity {
	return Issue(t, dir, name, nil, false)
}

// Issue makes an ECDSA Identity in dir, issued by ca (self-signed if nil).
func Issue(t testing.TB, dir, name string, ca *Identity, isCA bool) Identity {
	t.Helper()
	tpl := certs.Template{Type: certs.ECDSA, CommonName: name, SANs: []string{"localhost", "127.0.0.1"}, IsCA: isCA}
	key, err := certs.GenerateKey(certs.ECDSA, 256)
	if err != nil {
		t.Fatal(err)
	}
	var parent *x509.Certificate
	signer := key
	if ca != nil {
		parent, signer = ca.Leaf, ca.Cert.PrivateKey.(crypto.Signer)
	}
	leaf, err := certs.Issue(tpl, key.Public(), parent, signer)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := certs.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".pem")
	if err := os.WriteFile(file, append(kp, certs.EncodeCert(leaf)...), 0o600); err != nil {
		t.Fatal(err)
	}
	return Identity{File: file, Cert: tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, Leaf: leaf}
}

// Proc is a running tlspin process.
type Proc struct {
	Cmd    *exec.Cmd
	Stdout *syncbuf.Buffer
	Stderr *syncbuf.Buffer
	// Done is closed when the process has exited; Err is valid then.
	Done chan struct{}
	Err  error
	// Addr is where StartServe's server listens.
	Addr string
}

var listening = regexp.MustCompile(`listening: addr=(\S+)`)

// StartTlspin runs the tlspin binary with args in the background.
func StartTlspin(t *testing.T, stdin io.Reader, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(testbin.Tlspin(t), args...)
	p := &Proc{Cmd: cmd, Stdout: &syncbuf.Buffer{}, Stderr: &syncbuf.Buffer{}, Done: make(chan struct{})}
	cmd.Stdin = stdin
	cmd.Stdout = p.Stdout
	cmd.Stderr = p.Stderr
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.Err = cmd.Wait(); close(p.Done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.Done
		if t.Failed() {
			t.Logf("tlspin %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p.Stdout, p.Stderr)
		}
	})
	return p
}

// StartServe runs `tlspin serve --listen 127.0.0.1:0 ARGS` and waits until
// it logs that it listens.
func StartServe(t *testing.T, args ...string) *Proc {
	t.Helper()
	p := StartTlspin(t, nil, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	if !wait.Until(20*time.Second, func() bool {
		if m := listening.FindStringSubmatch(p.Stderr.String()); m != nil {
			p.Addr = m[1]
			return true
		}
		select {
		case <-p.Done:
			return true
		default:
			return false
		}
	}) || p.Addr == "" {
		t.Fatalf("serve did not listen: %v\n%s", p.Err, p.Stderr)
	}
	return p
}

// Wait waits for p to exit and returns its exit code.
func (p *Proc) Wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.Done:
	case <-time.After(d):
		t.Fatalf("tlspin still running after %s\nstderr:\n%s", d, p.Stderr)
	}
	if p.Err == nil {
		return 0
	}
	if ee, ok := p.Err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("tlspin: %v", p.Err)
	return -1
}

// RunTlspin runs tlspin to completion and returns its exit code and output.
func RunTlspin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	p := StartTlspin(t, strings.NewReader(""), args...)
	code := p.Wait(t, 30*time.Second)
	return code, p.Stdout.String(), p.Stderr.String()
}

// ProcStat returns the ppid and state of pid, from /proc/PID/stat.
func ProcStat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || len(s) < i+4 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0][0], true
}

// Alive reports whether pid runs (a zombie is dead).
func Alive(pid int) bool {
	_, st, ok := ProcStat(pid)
	return ok && st != 'Z' && st != 'X' && syscall.Kill(pid, 0) == nil
}

// PluginChildren returns the verifier plugin processes whose parent is pid.
func PluginChildren(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, st, ok := ProcStat(c); ok && pp == pid && st != 'Z' {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c))
			if bytes.Contains(cmdline, []byte("__verifier")) || bytes.Contains(cmdline, []byte("tlspin-builtins")) {
				out = append(out, c)
			}
		}
	}
	return out
}

// WaitPlugins waits until pid has n plugin children and returns them.
func WaitPlugins(t *testing.T, pid, n int) []int {
	t.Helper()
	var kids []int
	if !wait.Until(20*time.Second, func() bool { kids = PluginChildren(pid); return len(kids) == n }) {
		t.Fatalf("host %d has plugin children %v, want %d", pid, kids, n)
	}
	return kids
}

// ScanLines returns the lines of s.
func ScanLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// PEMCert returns the PEM of id's certificate alone.
func PEMCert(id Identity) []byte { return certs.EncodeCert(id.Leaf) }
