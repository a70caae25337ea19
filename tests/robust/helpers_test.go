// Package robust holds tlspin's end-to-end robustness tests: mutual TLS
// with every built-in verifier, a chaos test against a server whose
// verifier plugin is killed and stopped, orphan tests for every way the
// host can exit, and interop with real openssl. They run the real tlspin
// binary (built once) and real plugin processes, on loopback only.
package robust

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
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// identity is a key pair written as one PEM file (key and certificate).
type identity struct {
	file string
	cert tls.Certificate
	leaf *x509.Certificate
}

func (id identity) sha256() string {
	s := sha256.Sum256(id.leaf.Raw)
	return hex.EncodeToString(s[:])
}

func (id identity) spki() string {
	s := sha256.Sum256(id.leaf.RawSubjectPublicKeyInfo)
	return "sha256//" + base64.StdEncoding.EncodeToString(s[:])
}

func (id identity) md5() string {
	out, err := exec.Command("openssl", "x509", "-noout", "-fingerprint", "-md5", "-in", id.file).Output()
	if err == nil {
		_, v, _ := strings.Cut(strings.TrimSpace(string(out)), "=")
		return strings.ToLower(strings.ReplaceAll(v, ":", ""))
	}
	return ""
}

// newIdentity makes a self-signed ECDSA identity in dir.
func newIdentity(t testing.TB, dir, name string) identity {
	return issue(t, dir, name, nil, false)
}

// issue makes an ECDSA identity in dir, issued by ca (self-signed if nil).
func issue(t testing.TB, dir, name string, ca *identity, isCA bool) identity {
	t.Helper()
	tpl := certs.Template{Type: certs.ECDSA, CommonName: name, SANs: []string{"localhost", "127.0.0.1"}, IsCA: isCA}
	key, err := certs.GenerateKey(certs.ECDSA, 256)
	if err != nil {
		t.Fatal(err)
	}
	var parent *x509.Certificate
	signer := key
	if ca != nil {
		parent, signer = ca.leaf, ca.cert.PrivateKey.(crypto.Signer)
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
	return identity{file: file, cert: tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, leaf: leaf}
}

// lockedBuffer is a buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a running tlspin process.
type proc struct {
	cmd    *exec.Cmd
	stdout *lockedBuffer
	stderr *lockedBuffer
	done   chan struct{}
	err    error // valid after done
	addr   string
}

var listening = regexp.MustCompile(`listening: addr=(\S+)`)

// startTlspin runs the tlspin binary with args in the background.
func startTlspin(t *testing.T, stdin io.Reader, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(testbin.Tlspin(t), args...)
	p := &proc{cmd: cmd, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdin = stdin
	cmd.Stdout = p.stdout
	cmd.Stderr = p.stderr
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("tlspin %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

// startServe runs `tlspin serve --listen 127.0.0.1:0 ARGS` and waits until
// it logs that it listens.
func startServe(t *testing.T, args ...string) *proc {
	t.Helper()
	p := startTlspin(t, nil, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	if !wait.Until(20*time.Second, func() bool {
		if m := listening.FindStringSubmatch(p.stderr.String()); m != nil {
			p.addr = m[1]
			return true
		}
		select {
		case <-p.done:
			return true
		default:
			return false
		}
	}) || p.addr == "" {
		t.Fatalf("serve did not listen: %v\n%s", p.err, p.stderr)
	}
	return p
}

// wait waits for p to exit and returns its exit code.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("tlspin still running after %s\nstderr:\n%s", d, p.stderr)
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("tlspin: %v", p.err)
	return -1
}

// runTlspin runs tlspin to completion and returns its exit code and output.
func runTlspin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	p := startTlspin(t, strings.NewReader(""), args...)
	code := p.wait(t, 30*time.Second)
	return code, p.stdout.String(), p.stderr.String()
}

// procStat returns the ppid and state of pid, from /proc/PID/stat.
func procStat(pid int) (ppid int, state byte, ok bool) {
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

// alive reports whether pid runs (a zombie is dead).
func alive(pid int) bool {
	_, st, ok := procStat(pid)
	return ok && st != 'Z' && st != 'X' && syscall.Kill(pid, 0) == nil
}

// pluginChildren returns the verifier plugin processes whose parent is pid.
func pluginChildren(pid int) []int {
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
		if pp, st, ok := procStat(c); ok && pp == pid && st != 'Z' {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c))
			if bytes.Contains(cmdline, []byte("__verifier")) {
				out = append(out, c)
			}
		}
	}
	return out
}

// waitPlugins waits until pid has n plugin children and returns them.
func waitPlugins(t *testing.T, pid, n int) []int {
	t.Helper()
	var kids []int
	if !wait.Until(20*time.Second, func() bool { kids = pluginChildren(pid); return len(kids) == n }) {
		t.Fatalf("host %d has plugin children %v, want %d", pid, kids, n)
	}
	return kids
}

// scanLines returns the lines of s.
func scanLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// pemCert returns the PEM of id's certificate alone.
func pemCert(id identity) []byte { return certs.EncodeCert(id.leaf) }
