package cli_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestHungVerifierIsNamed: a verifier that gives no verdict within
// --verify-timeout rejects the client (fail closed), and serve and proxy
// server say so: the verifier failed, not the handshake timeout (10 s,
// which an operator would then raise to no avail), and the rejection is
// ours, as when the verifier crashes.
func TestHungVerifierIsNamed(t *testing.T) {
	dir := t.TempDir()
	srvFile, _ := identityFile(t, dir, "server")
	cliFile, _ := identityFile(t, dir, "client")
	pair, err := tls.LoadX509KeyPair(cliFile, cliFile)
	if err != nil {
		t.Fatal(err)
	}
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	plugins := misbehaveDir(t)
	common := []string{"--log-level", "info", "--plugin-dir", plugins, "--verify-timeout", "300ms"}
	tests := []struct {
		name, event string
		args        []string
	}{
		{"proxy server", "rejected", []string{"proxy", "server", "--json", "--listen", "127.0.0.1:0", "--target", target.Addr().String(), "--cert", srvFile, "--verifier", "misbehave:mode=hang"}},
		{"serve", "rejection", []string{"serve", "--json", "--listen", "127.0.0.1:0", "--cert", srvFile, "--verifier", "misbehave:mode=hang"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, addr := startBG(t, proxyListening, testbin.Tlspin(t), append(common, tt.args...)...)
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{pair}})
			if err == nil {
				// TLS 1.3: the client learns of the rejection on its first read.
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err = c.Read(make([]byte, 1))
				c.Close()
			}
			if err == nil {
				t.Fatal("a client got through a verifier that never answers")
			}
			var ev map[string]any
			if !wait.Until(10*time.Second, func() bool {
				sc := bufio.NewScanner(strings.NewReader(p.stdout.String()))
				for sc.Scan() {
					if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["event"] == tt.event {
						return true
					}
				}
				return false
			}) {
				t.Fatalf("no %s event:\n%s", tt.event, p.stdout)
			}
			reason, _ := ev["reason"].(string)
			// What is left of the 300 ms when the plugin is asked, which
			// the message gives, is a few milliseconds less on a busy
			// machine (299ms, seen with two suites running at once).
			if ev["by"] != "rejected" || !gaveNoVerdict.MatchString(reason) || strings.Contains(reason, "handshake timeout") {
				t.Errorf("%s event by %v, reason %q; want by rejected, naming the verifier that gave no verdict", tt.event, ev["by"], reason)
			}
			if log := p.stderr.String(); strings.Contains(log, "handshake did not finish") {
				t.Errorf("log blames the handshake timeout:\n%s", log)
			}
		})
	}
}

// gaveNoVerdict matches the reason of a verifier that did not answer
// within a verify timeout of 300 ms.
var gaveNoVerdict = regexp.MustCompile(`gave no verdict within (2[5-9][0-9]|300)ms`)
