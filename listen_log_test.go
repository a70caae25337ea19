package tlspin_test

import (
	"crypto/tls"
	"io"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestListenLogsFailedHandshakes: a client that fails its handshake with
// a Listen listener is logged at warn level, with its address and the
// reason, so that a server with the default (warn) logger says why it
// turned a client away; a client that closes before it says hello (a port
// scanner, a TCP health check) is no warning. Each client dials from an
// address of its own: one source gets a warning a second.
func TestListenLogsFailedHandshakes(t *testing.T) {
	good := newIdentity("good")
	addr, logs := listenLogged(t, good)
	var sources atomic.Int32
	dial := func(t *testing.T) net.Conn {
		from := net.IPv4(127, 0, 0, byte(10+sources.Add(1)))
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// tlsClient dials with cert (none if nil), trusting the server unless
	// distrust, and returns its local address once the handshake is over.
	tlsClient := func(cert *tls.Certificate, distrust bool) func(t *testing.T) string {
		return func(t *testing.T) string {
			raw := dial(t)
			defer raw.Close()
			cfg := &tls.Config{InsecureSkipVerify: true}
			if distrust {
				cfg.VerifyConnection = func(tls.ConnectionState) error { return io.ErrUnexpectedEOF }
			}
			if cert != nil {
				cfg.Certificates = []tls.Certificate{*cert}
			}
			c := tls.Client(raw, cfg)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if err := c.Handshake(); err == nil {
				c.Read(make([]byte, 1)) // the server's verdict arrives after our Finished
			}
			return raw.LocalAddr().String()
		}
	}
	rawClient := func(send string, reset bool) func(t *testing.T) string {
		return func(t *testing.T) string {
			c := dial(t)
			io.WriteString(c, send)
			if reset {
				c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
			return c.LocalAddr().String()
		}
	}
	hostile, bad := newIdentity("evil\x1b]0;owned\x07\u202e"), newIdentity("bad")
	tests := []struct {
		name   string
		client func(t *testing.T) string
		warn   bool
		says   []string // in the warning
	}{
		{"a certificate the verifiers reject", tlsClient(&bad.cert, false), true, []string{"spkipin", "peer_spki="}},
		{"no certificate", tlsClient(nil, false), true, []string{"certificate"}},
		{"a client that does not trust us", tlsClient(&good.cert, true), true, []string{"remote error"}},
		{"not TLS", rawClient("GET / HTTP/1.0\r\n\r\n", false), true, []string{"reason="}},
		{"a subject with control characters", tlsClient(&hostile.cert, false), true, []string{"evil"}},
		{"connect and close", rawClient("", false), false, nil},
		{"connect and reset", rawClient("", true), false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			remote := tt.client(t)
			// Every failure is logged by the listener, at debug at least:
			// wait for it.
			line := regexp.MustCompile(`(?m)^.*\]\s+client .*remote=` + regexp.QuoteMeta(remote) + `\b.*$`)
			var got string
			if !wait.Until(20*time.Second, func() bool { got = line.FindString(logs.String()); return got != "" }) {
				t.Fatalf("nothing logged about %s:\n%s", remote, logs.String())
			}
			if warned := strings.Contains(got, "[WARN]"); warned != tt.warn {
				t.Errorf("logged %q; want a warning: %v", got, tt.warn)
			}
			for _, s := range tt.says {
				if !strings.Contains(got, s) {
					t.Errorf("logged %q; want it to say %q", got, s)
				}
			}
			if strings.ContainsAny(got, "\x1b\x07\u202e") {
				t.Errorf("logged %q: control characters the client sent reach the log", got)
			}
		})
	}
}

// TestListenWarningsAreBounded: anyone who can connect can fail a
// handshake; 200 such clients in a burst leave a few warnings, the rest
// at debug level, and a later warning counts those left out.
func TestListenWarningsAreBounded(t *testing.T) {
	addr, logs := listenLogged(t, newIdentity("good"))
	const n = 200
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
		c.Close()
	}
	failures := func() int { return strings.Count(logs.String(), "client handshake failed") }
	if !wait.Until(20*time.Second, func() bool { return failures() == n }) {
		t.Fatalf("%d of %d failures logged", failures(), n)
	}
	if warned := strings.Count(logs.String(), "[WARN]  client handshake failed"); warned == 0 || warned > 50 {
		t.Errorf("%d of %d failures warned about, want a few", warned, n)
	}
}

// listenLogged serves a Listen listener that allows the client good,
// closing what it accepts, and returns its address and everything its
// Verifiers log, debug level included.
func listenLogged(t *testing.T, good identity) (string, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	v := start(t, []string{"spkipin:pin=" + good.spki}, tlspin.WithLogger(hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})))
	ln, err := v.Listen("tcp", "127.0.0.1:0", newIdentity("server").cert)
	if err != nil {
		t.Fatal(err)
	}
	return e2e.Serve(t, ln, func(net.Conn) {}), logs // Serve closes each
}
