package robust

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/e2e"

	"github.com/tlspin/tlspin/internal/wait"
)

// TestServeJSONAndGracefulStop runs `tlspin serve --json` with a verifier:
// a refused client shows as a rejection event with its fingerprint; a
// trusted client that is mid-line when SIGTERM arrives may finish within
// the grace period, its line is printed whole, and serve exits 0 with
// every event a complete JSON object.
func TestServeJSONAndGracefulStop(t *testing.T) {
	dir := t.TempDir()
	srv := e2e.NewIdentity(t, dir, "server")
	good := e2e.NewIdentity(t, dir, "good")
	bad := e2e.NewIdentity(t, dir, "bad")
	s := e2e.StartServe(t, "--json", "--grace", "5s", "--cert", srv.File, "--verifier", "spkipin", "--pin", good.SPKI())

	if handshake(s.Addr, bad.Cert, "never printed") {
		t.Fatal("untrusted client accepted")
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.Addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{good.Cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "line one\nhalf a")
	if !wait.Until(5*time.Second, func() bool { return strings.Contains(s.Stdout.String(), `"line one"`) }) {
		t.Fatalf("first line not printed: %s", s.Stdout)
	}
	if err := s.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Still open during the grace period: finish the line and close.
	if !wait.Until(5*time.Second, func() bool { return strings.Contains(s.Stderr.String(), "letting open connections finish") }) {
		t.Fatalf("serve did not announce the grace period:\n%s", s.Stderr)
	}
	io.WriteString(c, " line\n")
	c.CloseWrite()
	io.Copy(io.Discard, c)
	if code := s.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM, want 0", code)
	}

	type event struct {
		Event      string `json:"event"`
		Conn       uint64 `json:"conn"`
		Data       *string
		Reason     string `json:"reason"`
		PeerSHA256 string `json:"peer_sha256"`
		Bytes      *int64 `json:"bytes"`
	}
	var got []string
	for _, line := range e2e.ScanLines(s.Stdout.String()) {
		var e event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("stdout line %q is not one JSON object: %v", line, err)
		}
		switch e.Event {
		case "rejection":
			if e.PeerSHA256 != bad.SHA256() || e.Reason == "" {
				t.Errorf("rejection %+v: want the bad client's fingerprint %s and a reason", e, bad.SHA256())
			}
		case "connection":
			if e.PeerSHA256 != good.SHA256() {
				t.Errorf("connection %+v: want the good client's fingerprint", e)
			}
		case "data":
			got = append(got, *e.Data)
		case "close":
			if e.Bytes == nil || *e.Bytes != int64(len("line one\nhalf a line\n")) {
				t.Errorf("close %+v: want the byte count", e)
			}
		default:
			t.Errorf("unknown event %q", e.Event)
		}
	}
	if strings.Join(got, "|") != "line one|half a line" {
		t.Errorf("data events %q, want the two whole lines", got)
	}
	if strings.Contains(s.Stdout.String(), "never printed") {
		t.Error("data of the rejected client printed")
	}
}

// TestServeMaxLine checks that --max-line bounds what one connection holds:
// a longer line comes out in pieces.
func TestServeMaxLine(t *testing.T) {
	dir := t.TempDir()
	srv := e2e.NewIdentity(t, dir, "server")
	s := e2e.StartServe(t, "--max-line", "8", "--cert", srv.File)
	code, _, stderr := e2e.RunTlspin(t, "send", "--log-level", "error", "--verifier", "spkipin", "--pin", srv.SPKI(), s.Addr, "abcdefghijkl\nshort\n")
	if code != 0 {
		t.Fatalf("send: exit %d: %s", code, stderr)
	}
	want := "abcdefgh\nijkl\nshort\n"
	if !wait.Until(5*time.Second, func() bool { return s.Stdout.String() == want }) {
		t.Fatalf("serve printed %q, want %q", s.Stdout, want)
	}
}
