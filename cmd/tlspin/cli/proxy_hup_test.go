package cli_test

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestProxyClientWithoutCertSurvivesSIGHUP: SIGHUP is proxy's reload
// signal (systemctl reload, a log rotation's postrotate); a proxy client
// without --cert has nothing to reload, and must say so and go on rather
// than die of SIGHUP's default action, cutting every connection.
func TestProxyClientWithoutCertSurvivesSIGHUP(t *testing.T) {
	dir := t.TempDir()
	srvFile, srvPin := identityFile(t, dir, "server")
	cert, err := tls.LoadX509KeyPair(srvFile, srvFile)
	if err != nil {
		t.Fatal(err)
	}
	target := e2e.ServeTLS(t, cert, func(c *tls.Conn) { io.Copy(c, c) })
	prx, addr := startProxy(t, "client", "--listen", "127.0.0.1:0", "--target", target, "--verifier", "spkipin", "--pin", srvPin)
	live, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	echo := func(msg string) { t.Helper(); echoThrough(t, live, msg) }
	echo("before")
	prx.cmd.Process.Signal(syscall.SIGHUP)
	if !wait.Until(10*time.Second, func() bool { return strings.Contains(prx.stderr.String(), "SIGHUP: no --cert to reload") }) {
		t.Fatal("SIGHUP not answered")
	}
	echo("after SIGHUP")
	select {
	case err := <-prx.done:
		prx.done <- err
		t.Fatalf("proxy exited after SIGHUP: %v", err)
	default:
	}
}
