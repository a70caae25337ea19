package cli_test

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/wait"
)

// allowlistLine is the allowlist line of an SPKI pin (sha256//BASE64).
func allowlistLine(spki string) string {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(spki, "sha256//"))
	if err != nil {
		panic(err)
	}
	return "spki:" + base64.StdEncoding.EncodeToString(raw) + "\n"
}

// writeList replaces the allowlist at path, as an editor does (a new file
// renamed over the old).
func writeList(t *testing.T, path string, lines ...string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// closedWithin reports whether c is closed by its peer within d: a read
// ends with EOF or an error other than a timeout.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// toldRevoked waits for a revocation's warning on stderr, then for its
// --json event (named event, by "rejected") on stdout, which follows it.
func toldRevoked(t *testing.T, stderr, stdout fmt.Stringer, warning, event string) {
	t.Helper()
	if !wait.Until(10*time.Second, func() bool { return strings.Contains(stderr.String(), warning) }) {
		t.Fatalf("no warning %q", warning)
	}
	if !wait.Until(10*time.Second, func() bool {
		for _, l := range e2e.ScanLines(stdout.String()) {
			if strings.Contains(l, `"event":"`+event+`"`) && strings.Contains(l, `"by":"rejected"`) {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no %s event by rejected in --json:\n%s", event, stdout)
	}
}

// recheckModes are the two ways serve and the proxy are run here: their
// connections watched (the default), or judged once.
var recheckModes = []struct {
	name    string
	args    []string
	revoked bool
}{
	{"default", nil, true},
	{"--recheck=false", []string{"--recheck=false"}, false},
}

// TestProxyRecheck is the attack of a client whose pin the operator
// removed while its tunnel was open: the handshake allowed it, and
// without a second look it would keep the tunnel for as long as it
// likes. proxy server: remove client a's pin from the allowlist, and a's
// open connection must be closed, with a warning, while b's goes on;
// --recheck=false keeps a's open (and a new connection of a is refused
// either way).
func TestProxyRecheck(t *testing.T) {
	for _, tt := range recheckModes {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			srvFile, _ := identityFile(t, dir, "server")
			aFile, aPin := identityFile(t, dir, "a")
			bFile, bPin := identityFile(t, dir, "b")
			list := filepath.Join(dir, "allowed")
			writeList(t, list, allowlistLine(aPin), allowlistLine(bPin))
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			target := e2e.Serve(t, ln, func(c net.Conn) { io.Copy(c, c) })
			prx, addr := startProxy(t, append([]string{"server", "--listen", "127.0.0.1:0", "--target", target, "--cert", srvFile,
				"--verifier", "allowlist:file=" + list, "--json", "--metrics", "127.0.0.1:0"}, tt.args...)...)
			metricsAddr := regexp.MustCompile(`metrics=http://(\S+)/metrics`).FindStringSubmatch(prx.stderr.String())
			if metricsAddr == nil {
				t.Fatalf("no metrics address logged:\n%s", prx.stderr)
			}
			dial := func(file string) (*tls.Conn, error) {
				pair, err := certs.LoadKeyPair(file, "")
				if err != nil {
					t.Fatal(err)
				}
				c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{pair}})
				if err != nil {
					return nil, err
				}
				// TLS 1.3: the server's verdict on our certificate comes
				// after our side of the handshake; a round trip settles it.
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(c, "?"); err != nil {
					c.Close()
					return nil, err
				}
				if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
					c.Close()
					return nil, err
				}
				return c, nil
			}
			a, err := dial(aFile)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := dial(bFile)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()

			writeList(t, list, allowlistLine(bPin))
			// The reload is seen once a new connection of a is refused.
			if !wait.Until(10*time.Second, func() bool {
				c, err := dial(aFile)
				if c != nil {
					c.Close()
				}
				return err != nil
			}) {
				t.Fatal("the allowlist's reload was not seen")
			}
			if tt.revoked {
				if !closedWithin(a, 10*time.Second) {
					t.Fatal("a's open connection outlived the removal of its pin")
				}
				toldRevoked(t, prx.stderr, prx.stdout, "closed: asked again after a policy change, the verifiers no longer allow the peer", "closed")
				resp, err := http.Get("http://" + metricsAddr[1] + "/metrics")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.Contains(string(body), "\ntlspin_proxy_revoked_total 1\n") {
					t.Fatalf("metrics do not count the revocation:\n%s", body)
				}
			} else {
				echoThrough(t, a, "still open")
			}
			echoThrough(t, b, "b goes on")
		})
	}
}

// TestProxyClientRecheck: proxy client, the target's pin removed from the
// allowlist, or replaced in the tofu store by hand: the local client's
// open connection through it is closed.
func TestProxyClientRecheck(t *testing.T) {
	for _, tt := range []struct {
		name     string
		verifier func(file string) string
		// setup writes the file before the proxy starts; revoke edits it.
		setup, revoke func(t *testing.T, file, srvPin, otherPin string)
	}{
		{"allowlist", func(f string) string { return "allowlist:file=" + f },
			func(t *testing.T, f, srvPin, _ string) { writeList(t, f, allowlistLine(srvPin)) },
			func(t *testing.T, f, _, otherPin string) { writeList(t, f, allowlistLine(otherPin)) }},
		{"tofu", func(f string) string { return "tofu:file=" + f },
			func(*testing.T, string, string, string) {},
			func(t *testing.T, f, srvPin, otherPin string) {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				old, new := strings.TrimSuffix(allowlistLine(srvPin), "\n"), strings.TrimSuffix(allowlistLine(otherPin), "\n")
				if !strings.Contains(string(b), old) {
					t.Fatalf("the target was not recorded:\n%s", b)
				}
				writeList(t, f, strings.Replace(string(b), old, new, 1))
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			srvFile, srvPin := identityFile(t, dir, "server")
			_, otherPin := identityFile(t, dir, "other")
			target := tlsEcho(t, srvFile)
			file := filepath.Join(dir, "pins")
			tt.setup(t, file, srvPin, otherPin)
			prx, addr := startProxy(t, "client", "--listen", "127.0.0.1:0", "--target", target, "--verifier", tt.verifier(file))
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			echoThrough(t, c, "before")
			tt.revoke(t, file, srvPin, otherPin)
			if !closedWithin(c, 10*time.Second) {
				t.Fatal("the connection to a target whose pin was removed stayed open")
			}
			if !wait.Until(10*time.Second, func() bool {
				return strings.Contains(prx.stderr.String(), "closed: asked again after a policy change, the verifiers no longer allow the peer")
			}) {
				t.Fatal("no warning")
			}
		})
	}
}

// TestServeRecheck: serve, a client streaming lines (a log shipper) whose
// pin is removed from the allowlist: its connection is closed, with a
// warning and a close event by "rejected", and what it sends after is
// not printed; --recheck=false keeps it.
func TestServeRecheck(t *testing.T) {
	for _, tt := range recheckModes {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			srvFile, _ := identityFile(t, dir, "server")
			aFile, aPin := identityFile(t, dir, "a")
			_, otherPin := identityFile(t, dir, "other")
			list := filepath.Join(dir, "allowed")
			writeList(t, list, allowlistLine(aPin))
			srv := e2e.StartServe(t, append([]string{"--cert", srvFile, "--verifier", "allowlist:file=" + list, "--json"}, tt.args...)...)
			pair, err := certs.LoadKeyPair(aFile, "")
			if err != nil {
				t.Fatal(err)
			}
			c, err := tls.Dial("tcp", srv.Addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{pair}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			printed := func(line string) bool { return strings.Contains(srv.Stdout.String(), `"data":"`+line+`"`) }
			io.WriteString(c, "before\n")
			if !wait.Until(10*time.Second, func() bool { return printed("before") }) {
				t.Fatal("the first line was not printed")
			}
			writeList(t, list, allowlistLine(otherPin))
			// The reload is seen once a new connection of a is refused.
			if !wait.Until(10*time.Second, func() bool {
				n, err := tls.Dial("tcp", srv.Addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{pair}})
				if err != nil {
					return true
				}
				defer n.Close()
				n.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				_, err = n.Read(make([]byte, 1)) // TLS 1.3: the verdict comes after our side
				var ne net.Error
				return err != nil && !(errors.As(err, &ne) && ne.Timeout())
			}) {
				t.Fatal("the allowlist's reload was not seen")
			}
			if !tt.revoked {
				io.WriteString(c, "still open\n")
				if !wait.Until(10*time.Second, func() bool { return printed("still open") }) {
					t.Fatal("a line after the reload was not printed with --recheck=false")
				}
				return
			}
			if !closedWithin(c, 10*time.Second) {
				t.Fatal("the client's connection outlived the removal of its pin")
			}
			io.WriteString(c, "after\n")
			toldRevoked(t, srv.Stderr, srv.Stdout, "client closed: asked again after a policy change, the verifiers no longer allow it", "close")
			if printed("after") {
				t.Fatal("a line sent after the revocation was printed")
			}
		})
	}
}
