package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// bg is a background process.
type bg struct {
	cmd            *exec.Cmd
	stdout, stderr *syncbuf.Buffer
	done           chan error
}

// startBG runs name args in the background, killed at the end of the
// test, and waits until its output matches ready (nil: no wait); it
// returns the first submatch.
func startBG(t *testing.T, ready *regexp.Regexp, name string, args ...string) (*bg, string) {
	t.Helper()
	p := &bg{cmd: exec.Command(name, args...), stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Dir = t.TempDir()
	p.cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s %s\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	if ready == nil {
		return p, ""
	}
	var m []string
	if !wait.Until(20*time.Second, func() bool {
		m = ready.FindStringSubmatch(p.stdout.String() + p.stderr.String())
		return m != nil
	}) {
		t.Fatalf("%s did not get ready:\n%s\n%s", name, p.stdout, p.stderr)
	}
	return p, m[1]
}

// dialLeaf connects to the TLS server at addr, trusting any certificate,
// and returns the connection and the DER of the leaf it presented.
func dialLeaf(t *testing.T, addr string) (*tls.Conn, []byte) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	return c, c.ConnectionState().PeerCertificates[0].Raw
}

// stopsCleanly sends p sig and fails the test unless p then exits 0
// within d.
func (p *bg) stopsCleanly(t *testing.T, sig os.Signal, d time.Duration) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("exited with %v after %v, want 0", err, sig)
		}
	case <-time.After(d):
		t.Fatalf("still running %s after %v", d, sig)
	}
}

var proxyListening = regexp.MustCompile(`listening: addr=(\S+)`)

func startProxy(t *testing.T, args ...string) (*bg, string) {
	t.Helper()
	return startBG(t, proxyListening, testbin.Tlspin(t), append([]string{"--log-level", "info", "proxy"}, args...)...)
}

// identityFile writes a fresh key pair to dir/name.pem and returns the
// path and its SPKI pin.
func identityFile(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: name, SANs: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := certs.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".pem")
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, append(kp, certs.EncodeCert(c)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return file, "sha256//" + base64.StdEncoding.EncodeToString(sum[:])
}

func need(t *testing.T, tools ...string) {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("CI lacks %s", tool)
			}
			t.Skipf("needs %s", tool)
		}
	}
}

// TestProxyServerWithCurlAndPython: curl with a client certificate, and
// openssl s_client, through `proxy server` to Python's http.server; a
// client with another certificate never reaches Python.
func TestProxyServerWithCurlAndPython(t *testing.T) {
	need(t, "curl", "python3", "openssl")
	dir := t.TempDir()
	srvFile, srvPin := identityFile(t, dir, "server")
	cliFile, cliPin := identityFile(t, dir, "client")
	badFile, _ := identityFile(t, dir, "bad")
	www := t.TempDir()
	os.WriteFile(filepath.Join(www, "hello.txt"), []byte("hello through the proxy\n"), 0o644)
	py, pyAddr := startBG(t, regexp.MustCompile(`Serving HTTP on \S+ port (\d+)`), "python3", "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", www, "0")
	prx, addr := startProxy(t, "server", "--json", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:"+pyAddr, "--cert", srvFile, "--verifier", "spkipin", "--pin", cliPin)

	url := "https://" + addr + "/hello.txt"
	out, err := exec.Command("curl", "-sS", "-k", "--pinnedpubkey", srvPin, "--cert", cliFile, "--key", cliFile, url).CombinedOutput()
	if err != nil || string(out) != "hello through the proxy\n" {
		t.Fatalf("curl with the pinned client certificate: %v\n%s", err, out)
	}
	out, err = exec.Command("curl", "-sS", "-k", "--cert", badFile, "--key", badFile, url).CombinedOutput()
	if err == nil {
		t.Fatalf("curl with another certificate got through:\n%s", out)
	}
	sc := exec.Command("openssl", "s_client", "-connect", addr, "-quiet", "-cert", cliFile, "-key", cliFile)
	sc.Stdin = strings.NewReader("GET /hello.txt HTTP/1.0\r\n\r\n")
	out, err = sc.CombinedOutput()
	if !strings.Contains(string(out), "hello through the proxy") {
		t.Fatalf("openssl s_client: %v\n%s", err, out)
	}
	// Python's log reaches us through a pipe, after the reply: wait for
	// the two requests that were answered, then count.
	served := func() int { return strings.Count(py.stderr.String(), "GET /hello.txt") }
	wait.Until(10*time.Second, func() bool { return served() >= 2 })
	if n := served(); n != 2 {
		t.Errorf("python served %d requests, want 2 (the rejected client must never reach it):\n%s", n, py.stderr)
	}

	// --json: accepted, rejected (with the fingerprints) and closed with bytes.
	var kinds []string
	wait.Until(5*time.Second, func() bool { return strings.Count(prx.stdout.String(), `"closed"`) >= 2 })
	sc2 := bufio.NewScanner(strings.NewReader(prx.stdout.String()))
	for sc2.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc2.Bytes(), &ev); err != nil {
			t.Fatalf("--json line %q: %v", sc2.Text(), err)
		}
		kinds = append(kinds, ev["event"].(string))
		switch ev["event"] {
		case "rejected":
			if ev["by"] != "rejected" || ev["peer_spki"] == nil || !strings.Contains(ev["reason"].(string), "spkipin") {
				t.Errorf("rejected event %v", ev)
			}
		case "closed":
			if ev["bytes_to_target"].(float64) <= 0 || ev["bytes_from_target"].(float64) <= 0 || ev["duration_ms"] == nil {
				t.Errorf("closed event %v", ev)
			}
		}
	}
	if got := strings.Join(kinds, ","); strings.Count(got, "accepted") != 2 || strings.Count(got, "rejected") != 1 || strings.Count(got, "closed") != 2 {
		t.Errorf("events %s, want 2 accepted, 1 rejected, 2 closed", got)
	}
}

// TestProxyClientWithCurl: curl speaks plain HTTP to `proxy client`,
// which reaches an HTTPS server over TLS pinned by spkipin; a wrong pin
// closes curl's connection and the server sees no request.
func TestProxyClientWithCurl(t *testing.T) {
	need(t, "curl")
	dir := t.TempDir()
	srvFile, srvPin := identityFile(t, dir, "server")
	pair, err := certs.LoadKeyPair(srvFile, "")
	if err != nil {
		t.Fatal(err)
	}
	var requests sync.Map
	https := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Store(r.URL.Path, true)
		fmt.Fprintf(w, "hello %s over %s\n", r.URL.Path, r.Proto)
	}))
	https.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	https.StartTLS()
	defer https.Close()
	target := strings.TrimPrefix(https.URL, "https://")

	_, addr := startProxy(t, "client", "--listen", "127.0.0.1:0", "--target", target, "--verifier", "spkipin", "--pin", srvPin)
	out, err := exec.Command("curl", "-sS", "http://"+addr+"/pinned").CombinedOutput()
	if err != nil || string(out) != "hello /pinned over HTTP/1.1\n" {
		t.Fatalf("curl through proxy client: %v\n%s", err, out)
	}
	_, wrong := startProxy(t, "client", "--listen", "127.0.0.1:0", "--target", target, "--verifier", "spkipin", "--pin", "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	out, err = exec.Command("curl", "-sS", "http://"+wrong+"/wrong-pin").CombinedOutput()
	if err == nil {
		t.Fatalf("curl through a proxy pinned to another key got:\n%s", out)
	}
	if _, ok := requests.Load("/wrong-pin"); ok {
		t.Error("a server the verifier rejected received the request")
	}
}

// TestProxyClientUnixListen: proxy client --cert on --listen unix:/path
// serves this user (the socket has mode 0600, and --json names the local
// client by uid), reaches the target with the client certificate, and
// removes the socket on exit. Other users are kept out:
// internal/proxy.TestUnixListenerKeepsOtherUsersOut.
func TestProxyClientUnixListen(t *testing.T) {
	dir := t.TempDir()
	srvFile, srvPin := identityFile(t, dir, "server")
	cliFile, _ := identityFile(t, dir, "client")
	pair, err := certs.LoadKeyPair(srvFile, "")
	if err != nil {
		t.Fatal(err)
	}
	https := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello client %d\n", len(r.TLS.PeerCertificates))
	}))
	https.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAnyClientCert}
	https.StartTLS()
	defer https.Close()

	sock := filepath.Join(dir, "proxy.sock")
	prx, addr := startProxy(t, "client", "--json", "--listen", "unix:"+sock, "--target", strings.TrimPrefix(https.URL, "https://"), "--cert", cliFile, "--verifier", "spkipin", "--pin", srvPin)
	if addr != sock {
		t.Fatalf("listening on %q, want %q", addr, sock)
	}
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v, %v; want mode 0600", st, err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Get("http://proxy/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello client 1\n" {
		t.Fatalf("through the unix socket: %q", body)
	}
	hc.CloseIdleConnections()
	want := fmt.Sprintf(`"remote":"unix, uid %d, pid `, os.Geteuid())
	if !wait.Until(10*time.Second, func() bool { return strings.Contains(prx.stdout.String(), want) }) {
		t.Fatalf("--json does not name the local client %s:\n%s", want, prx.stdout)
	}
	prx.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-prx.done; err != nil {
		t.Fatalf("proxy client on SIGTERM: %v", err)
	}
	prx.done <- nil // for the cleanup
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left after exit: %v", err)
	}
}

// TestProxySignals: SIGHUP reloads the certificate (the watch interval is
// an hour, so only the signal can do it) while a stream stays up; SIGTERM
// lets that stream finish within --grace and exits 0.
func TestProxySignals(t *testing.T) {
	dir := t.TempDir()
	srvFile, _ := identityFile(t, dir, "server")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	prx, addr := startProxy(t, "server", "--listen", "127.0.0.1:0", "--target", ln.Addr().String(), "--cert", srvFile, "--watch-interval", "1h", "--grace", "10s")
	live, first := dialLeaf(t, addr)
	defer live.Close()
	echo := func(msg string) { t.Helper(); echoThrough(t, live, msg) }
	echo("before")
	identityFile(t, dir, "server") // a new pair in the same file
	prx.cmd.Process.Signal(syscall.SIGHUP)
	if !wait.Until(10*time.Second, func() bool { return strings.Contains(prx.stderr.String(), "SIGHUP: certificate reloaded") }) {
		t.Fatal("no reload after SIGHUP")
	}
	echo("after reload")
	c, now := dialLeaf(t, addr)
	c.Close()
	if bytes.Equal(now, first) {
		t.Error("new connection after SIGHUP got the old certificate")
	}

	prx.cmd.Process.Signal(syscall.SIGTERM)
	if !wait.Until(10*time.Second, func() bool { return strings.Contains(prx.stderr.String(), "stopped accepting") }) {
		t.Fatal("SIGTERM did not stop accepting")
	}
	echo("during the grace period")
	live.CloseWrite()
	live.Close()
	select {
	case err := <-prx.done:
		prx.done <- err
		if err != nil {
			t.Fatalf("proxy exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("proxy did not exit after its last connection closed")
	}
}

func TestProxyUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"proxy", "server", "--target", "127.0.0.1:1", "--cert", "x.pem"}, "--listen"},
		{[]string{"proxy", "server", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1"}, "--cert"},
		{[]string{"proxy", "client", "--listen", "127.0.0.1:0"}, "--target"},
		{[]string{"proxy", "server", "--listen", "unix:/tmp/proxy.sock", "--target", "127.0.0.1:1", "--cert", "x.pem"}, `--listen "unix:/tmp/proxy.sock": a unix socket is for proxy client`},
		{[]string{"proxy", "client", "--listen", "unix:", "--target", "127.0.0.1:1", "--verifier", "md5pin", "--pin", "00112233445566778899aabbccddeeff"}, `--listen "unix:": want unix:/path`},
		{[]string{"proxy", "client", "--listen", "127.0.0.1:0", "--target", "nohost", "--verifier", "md5pin", "--pin", "00112233445566778899aabbccddeeff"}, "want HOST:PORT or unix:/path"},
		// A unix socket's clients have no address to count: a cap that
		// would silently bound nothing is refused.
		{[]string{"proxy", "client", "--listen", "unix:/tmp/proxy.sock", "--max-conns-per-ip", "4", "--target", "127.0.0.1:1", "--verifier", "md5pin", "--pin", "00112233445566778899aabbccddeeff"}, "--max-conns-per-ip 4: the clients of a unix socket have no address"},
	}
	for _, tt := range tests {
		_, stderr, code := run(t, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want usage error mentioning %q", tt.args, code, stderr, tt.want)
		}
	}
}

// echoThrough sends msg on c, a stream to an echo server, and fails t
// unless it comes back.
func echoThrough(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, msg)
	b := make([]byte, len(msg))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != msg {
		t.Fatalf("live stream: %q %v", b, err)
	}
}

// TestProxyClientUnixTargetHasNoServerName: a unix:/path target has no
// host name, so proxy client sends no server name unless --server-name
// gives one. It sent "unix", which ca then checked the certificate
// against ("not valid for \"unix\""). Without the name, ca rejects the
// server, and the warning says to give --server-name; with it, the
// server gets that name and passes.
func TestProxyClientUnixTargetHasNoServerName(t *testing.T) {
	dir := t.TempDir()
	caKey, caCert, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "test CA", IsCA: true})
	if err != nil {
		t.Fatal(err)
	}
	key, err := certs.GenerateKey(certs.ECDSA, 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certs.Issue(certs.Template{CommonName: "app.internal", SANs: []string{"app.internal"}}, key.Public(), caCert, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, certs.EncodeCert(caCert), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "app.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	names := make(chan string, 4) // the server name of each ClientHello
	cfg := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}},
		GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			names <- hi.ServerName
			return nil, nil
		},
	}
	e2e.Serve(t, tls.NewListener(ln, cfg), func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.Copy(c, c)
	})
	for _, tc := range []struct {
		name  string
		extra []string
		sni   string
		pass  bool
	}{
		{"no --server-name", nil, "", false},
		{"--server-name", []string{"--server-name", "app.internal"}, "app.internal", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"client", "--listen", "127.0.0.1:0", "--target", "unix:" + sock, "--verifier", "ca:ca-file=" + caFile}, tc.extra...)
			prx, addr := startProxy(t, args...)
			c, err := net.Dial("tcp", addr)
			switch {
			case !tc.pass && errors.Is(err, syscall.ECONNRESET):
				// Reset before connect returned: the rejection was quick.
			case err != nil:
				t.Fatal(err)
			case tc.pass:
				defer c.Close()
				echoThrough(t, c, "hello\n")
			default:
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("read through the proxy: %v, want a reset (the server rejected)", err)
				}
			}
			select {
			case got := <-names:
				if got != tc.sni {
					t.Errorf("the server got the server name %q, want %q", got, tc.sni)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the server got no ClientHello")
			}
			const hint = "no server name was sent: if a verifier checks it, as ca does, give --server-name NAME"
			if !tc.pass && !wait.Until(10*time.Second, func() bool { return strings.Contains(prx.stderr.String(), hint) }) {
				t.Errorf("the rejection does not say %q", hint)
			}
		})
	}
}
