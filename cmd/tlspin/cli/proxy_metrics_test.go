package cli_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestProxyMetricsAddressIsLogged: the address --metrics serves on is
// logged, as --listen's is, so that --metrics 127.0.0.1:0 (a free port)
// can be scraped, and an operator sees where it is.
func TestProxyMetricsAddressIsLogged(t *testing.T) {
	dir := t.TempDir()
	srvFile, _ := identityFile(t, dir, "server")
	_, addr := startBG(t, regexp.MustCompile(`listening: addr=\S+ .*metrics=http://(\S+)/metrics`), testbin.Tlspin(t),
		"--log-level", "info", "proxy", "server", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--cert", srvFile, "--metrics", "127.0.0.1:0")
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || !strings.Contains(string(b), "tlspin_proxy_accepted_total") {
		t.Errorf("scrape of %s: %v\n%s", addr, err, b)
	}
}

// TestProxyMetricsAddressIsChecked: a --metrics address that no socket
// can take is a usage error (exit 2, the value quoted), found before
// anything starts, as --listen's is; it used to fail only when the
// metrics server listened, with exit 1 and net's wording. A good one is
// served; a bare port, as for --listen, on loopback.
func TestProxyMetricsAddressIsChecked(t *testing.T) {
	dir := t.TempDir()
	srvFile, _ := identityFile(t, dir, "server")
	server := []string{"proxy", "server", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--cert", srvFile}
	client := []string{"proxy", "client", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--verifier", "tofu"}
	for _, tt := range []struct {
		name    string
		cmd     []string
		metrics string
		want    int
		says    string // on stderr; for a good value, the address served
	}{
		{"missing port", server, "foo", cli.ExitUsage, `--metrics "foo": want PORT, HOST:PORT or :PORT`},
		{"host alone", client, "localhost", cli.ExitUsage, `--metrics "localhost": want PORT, HOST:PORT or :PORT`},
		{"port out of range", server, "127.0.0.1:99999", cli.ExitUsage, `--metrics "127.0.0.1:99999": port "99999": want 0 to 65535 or a service name`},
		{"proxy client's port out of range", client, ":70000", cli.ExitUsage, `--metrics ":70000": port "70000"`},
		{"host and port", server, "127.0.0.1:0", cli.ExitOK, "metrics=http://127.0.0.1:"},
		{"a port alone, on loopback", server, "0", cli.ExitOK, "metrics=http://127.0.0.1:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stderr := &syncbuf.Buffer{}
			env := cli.Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: stderr, Getenv: func(string) string { return "" }}
			code := make(chan int, 1)
			go func() {
				code <- cli.RunContext(ctx, env, append(append([]string{}, tt.cmd...), "--metrics", tt.metrics))
			}()
			if tt.want == cli.ExitOK {
				// Served: stop it once it says where (or has ended).
				wait.Until(20*time.Second, func() bool { return len(code) > 0 || strings.Contains(stderr.String(), "listening: ") })
				cancel()
			}
			select {
			case got := <-code:
				if got != tt.want || !strings.Contains(stderr.String(), tt.says) {
					t.Errorf("exit %d, want %d saying %q; stderr:\n%s", got, tt.want, tt.says, stderr)
				}
			case <-time.After(20 * time.Second):
				cancel()
				<-code
				t.Fatalf("still running 20s after; stderr:\n%s", stderr)
			}
		})
	}
}

// TestProxyTargetIsChecked: a --target that cannot be dialled is a usage
// error found before anything starts, with a hint where one helps: an
// IPv6 address without brackets (net's "too many colons" said nothing of
// them), a host without a port.
func TestProxyTargetIsChecked(t *testing.T) {
	for _, tt := range []struct{ mode, target, says string }{
		{"client", "::1:80", `target "::1:80": want HOST:PORT or unix:/path (an IPv6 address goes in brackets: [::1]:80)`},
		{"server", "fe80::1:443", "[fe80::1]:443"},
		{"client", "example.com", `target "example.com": want HOST:PORT or unix:/path (for a server, give HOST:PORT)`},
		{"client", "127.0.0.1:0", `port "0": want 1 to 65535 or a service name`},
		{"server", "unix:", `target "unix:": want unix:/path`},
	} {
		t.Run(tt.mode+" "+tt.target, func(t *testing.T) {
			stderr := &syncbuf.Buffer{}
			env := cli.Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: stderr, Getenv: func(string) string { return "" }}
			// --cert names a file that does not exist: the target is
			// checked before it is read, and before any verifier starts.
			args := []string{"proxy", tt.mode, "--listen", "127.0.0.1:0", "--target", tt.target, "--cert", filepath.Join(t.TempDir(), "none.pem"), "--verifier", "tofu"}
			if code := cli.RunContext(context.Background(), env, args); code != cli.ExitUsage || !strings.Contains(stderr.String(), tt.says) {
				t.Errorf("exit %d, stderr %q; want %d saying %q", code, stderr.String(), cli.ExitUsage, tt.says)
			}
		})
	}
}
