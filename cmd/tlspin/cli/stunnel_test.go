package cli_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestProxyWithStunnel: tlspin proxy and stunnel, another program, at the
// two ends of one pinned, mutually authenticated TLS link, both ways
// round. stunnel pins tlspin's certificate (verifyPeer with it as the
// only trusted one), and tlspin pins stunnel's key with spkipin. A
// stunnel with another key, or a tlspin pinned to another key, never
// reaches the backend.
func TestProxyWithStunnel(t *testing.T) {
	stunnel := stunnelBin()
	need(t, stunnel)
	dir := t.TempDir()
	tlspinSrv, _ := identityFile(t, dir, "tlspin-server")
	tlspinCli, _ := identityFile(t, dir, "tlspin-client")
	stunnelSrv, stunnelSrvPin := identityFile(t, dir, "stunnel-server")
	stunnelCli, stunnelCliPin := identityFile(t, dir, "stunnel-client")
	stranger, strangerPin := identityFile(t, dir, "stranger")
	backend, heard := echoLines(t)

	t.Run("stunnel client to tlspin proxy server", func(t *testing.T) {
		proxy, prx := startProxy(t, "server", "--json", "--listen", "127.0.0.1:0", "--target", backend, "--cert", tlspinSrv,
			"--verifier", "spkipin", "--pin", stunnelCliPin)
		pinned := startStunnel(t, stunnel, "client = yes", "connect = "+prx, "cert = "+stunnelCli, "CAfile = "+certOnly(t, tlspinSrv))
		if got, err := say(pinned, "from the pinned stunnel"); err != nil || got != "echo: from the pinned stunnel" {
			t.Fatalf("through stunnel and tlspin: %q, %v", got, err)
		}
		other := startStunnel(t, stunnel, "client = yes", "connect = "+prx, "cert = "+stranger, "CAfile = "+certOnly(t, tlspinSrv))
		if got, err := say(other, "from another key"); err == nil {
			t.Errorf("a stunnel with another key got %q through", got)
		}
		refusedBySpkipin(t, proxy)
	})

	t.Run("tlspin proxy client to stunnel server", func(t *testing.T) {
		srv := startStunnel(t, stunnel, "connect = "+backend, "cert = "+stunnelSrv, "CAfile = "+certOnly(t, tlspinCli))
		_, pinned := startProxy(t, "client", "--listen", "127.0.0.1:0", "--target", srv, "--cert", tlspinCli,
			"--verifier", "spkipin", "--pin", stunnelSrvPin)
		if got, err := say(pinned, "to the pinned stunnel"); err != nil || got != "echo: to the pinned stunnel" {
			t.Fatalf("through tlspin and stunnel: %q, %v", got, err)
		}
		proxy, wrong := startProxy(t, "client", "--json", "--listen", "127.0.0.1:0", "--target", srv, "--cert", tlspinCli,
			"--verifier", "spkipin", "--pin", strangerPin)
		if got, err := say(wrong, "to a stunnel pinned otherwise"); err == nil {
			t.Errorf("a tlspin pinned to another key got %q through", got)
		}
		refusedBySpkipin(t, proxy)
	})

	for _, never := range []string{"from another key", "to a stunnel pinned otherwise"} {
		if strings.Contains(heard.String(), never) {
			t.Errorf("the backend heard %q, which a verifier refused:\n%s", never, heard)
		}
	}
}

// refusedBySpkipin waits for proxy (run with --json) to report that
// spkipin rejected a peer: the refusal was tlspin's, not stunnel's.
func refusedBySpkipin(t *testing.T, proxy *bg) {
	t.Helper()
	if !wait.Until(10*time.Second, func() bool {
		out := proxy.stdout.String()
		return strings.Contains(out, `"event":"rejected"`) && strings.Contains(out, "spkipin")
	}) {
		t.Errorf("the proxy reported no rejection by spkipin:\n%s", proxy.stdout)
	}
}

// stunnelBin is Debian's stunnel4, or stunnel.
func stunnelBin() string {
	for _, name := range []string{"stunnel4", "stunnel"} {
		if _, err := exec.LookPath(name); err == nil {
			return name
		}
	}
	return "stunnel4"
}

var stunnelBound = regexp.MustCompile(`bound to (\S+)`)

// startStunnel runs stunnel in the foreground with one service on an
// ephemeral loopback port, TLS 1.3 only and its peer verified against
// CAfile, plus lines; it returns the address the service is bound to.
func startStunnel(t *testing.T, bin string, lines ...string) string {
	t.Helper()
	conf := "foreground = yes\npid =\ndebug = 6\n[svc]\naccept = 127.0.0.1:0\nsslVersionMin = TLSv1.3\nverifyPeer = yes\n" +
		strings.Join(lines, "\n") + "\n"
	file := filepath.Join(t.TempDir(), "stunnel.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	_, addr := startBG(t, stunnelBound, bin, file)
	return addr
}

// certOnly writes the certificate of the identity file id alone, for
// stunnel's CAfile, and returns its path.
func certOnly(t *testing.T, id string) string {
	t.Helper()
	pair, err := certs.LoadKeyPair(id, "")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), filepath.Base(id)+".crt")
	if err := os.WriteFile(file, certs.EncodeCert(pair.Leaf), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// echoLines runs a loopback TCP server that answers each line with
// "echo: " and the line, and keeps what it heard.
func echoLines(t *testing.T) (string, *syncbuf.Buffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	heard := &syncbuf.Buffer{}
	addr := e2e.Serve(t, ln, func(c net.Conn) {
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			fmt.Fprintf(heard, "%s\n", sc.Text())
			fmt.Fprintf(c, "echo: %s\n", sc.Text())
		}
	})
	return addr, heard
}

// say sends a line to addr in plain TCP and returns the line answered.
func say(addr, line string) (string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}
