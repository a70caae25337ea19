package proxy_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/proxy"
	"github.com/tlspin/tlspin/internal/server"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestRefusedClientCertificateIsWarned: in TLS 1.3 a server judges a
// client's certificate after the client's handshake has completed, so a
// client-mode proxy whose --cert the server refuses first logs the
// connection as accepted, then sees the server's alert. That close must
// be a warning that says what the alert means, not an info line.
func TestRefusedClientCertificateIsWarned(t *testing.T) {
	p := newPair(t, "tcp", "127.0.0.1:0")
	bad := newCert(t, "bad")
	var logs syncbuf.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})
	ccfg := pintls.ClientConfig(pinDecider{allow: p.srvCert.Leaf.Raw}, "", p.serverAddr, &bad, pintls.Options{Timeout: time.Second})
	ev := &events{}
	local, _ := run(t, proxy.Config{Mode: proxy.ClientMode, TLS: ccfg, Target: p.serverAddr, Log: log, OnEvent: ev.on})
	// The proxy may see the alert, and reset the local client, before
	// its connect even returns.
	if c, err := net.Dial("tcp", local); err == nil {
		defer c.Close()
		c.Write([]byte("hi"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a reply came through a server that refused our certificate")
		}
	}
	if !wait.Until(10*time.Second, func() bool { return strings.Contains(logs.String(), "[WARN]") }) {
		t.Fatalf("no warning:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "client certificate") {
		t.Errorf("the warning does not say the server may refuse our certificate:\n%s", logs.String())
	}
	if n := p.back.accepted.Load(); n != 0 {
		t.Errorf("the server's target was dialled %d times for a refused client", n)
	}
	if got, ok := waitEvent(ev, func(e proxy.Event) bool { return e.Kind == proxy.EventClosed }); !ok || got.By != server.RefusedByPeer {
		t.Errorf("closed event %+v, want it marked refused by the peer", got)
	}
}

// TestTargetClosesDuringHandshake: a target that closes the connection
// mid-handshake (a tlspin proxy server over its per-address limit, which
// every client of a proxy client counts against) gets a reason that
// points at such a limit, not a bare EOF.
func TestTargetClosesDuringHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := e2e.Serve(t, ln, func(c net.Conn) { c.Close() })
	srv := newCert(t, "server")
	ccfg := pintls.ClientConfig(pinDecider{allow: srv.Leaf.Raw}, "", target, nil, pintls.Options{Timeout: time.Second})
	ev := &events{}
	local, _ := run(t, proxy.Config{Mode: proxy.ClientMode, TLS: ccfg, Target: target, OnEvent: ev.on})
	if c, err := net.Dial("tcp", local); err == nil {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		c.Read(make([]byte, 1))
		c.Close()
	}
	got, ok := waitEvent(ev, func(e proxy.Event) bool { return e.Kind == proxy.EventRejected })
	if !ok || !strings.Contains(got.Reason, "--max-conns-per-ip") {
		t.Errorf("rejection %+v, want a reason naming the target's per-address limit", got)
	}
}
