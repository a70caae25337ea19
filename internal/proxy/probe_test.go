package proxy_test

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/proxy"
	"github.com/tlspin/tlspin/internal/server"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestProbesAndFailuresDoNotFloodTheLog: a load balancer's TCP health
// check connects and closes every few seconds; anyone who can connect can
// fail a handshake. Neither may fill the log: a burst of 100 probes
// leaves a few info lines, and 100 failed handshakes a few warnings (the
// rest at debug level, counted in the next line). Every one still has its
// event.
func TestProbesAndFailuresDoNotFloodTheLog(t *testing.T) {
	good, srv := newCert(t, "good"), newCert(t, "server")
	back := startBackend(t, "tcp", "127.0.0.1:0", func(net.Conn) {})
	var logs syncbuf.Buffer
	ev := &events{}
	scfg := pintls.ServerConfig(srv, pinDecider{allow: good.Leaf.Raw}, pintls.Options{Timeout: time.Second})
	addr, _ := run(t, proxy.Config{Mode: proxy.ServerMode, TLS: scfg, Target: back.addr, OnEvent: ev.on,
		Limits: server.Limits{MaxConns: 1000, MaxHandshakes: 1000, MaxConnsPerIP: -1}, Log: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug})})

	const n = 100
	clients := []struct {
		name string
		send string
	}{
		{"probe", ""},
		{"not TLS", "GET / HTTP/1.0\r\n\r\n"},
	}
	for _, c := range clients {
		for range n {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(conn, c.send)
			conn.Close()
		}
	}
	rejected := func() int {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		k := 0
		for _, e := range ev.all {
			if e.Kind == proxy.EventRejected {
				k++
			}
		}
		return k
	}
	if !wait.Until(30*time.Second, func() bool { return rejected() == 2*n }) {
		t.Fatalf("%d of %d rejected events", rejected(), 2*n)
	}
	out := logs.String()
	// The burst of ten in each second the run lasts, the rest at debug.
	const probe = "client closed before its ClientHello was answered"
	info, debug := strings.Count(out, "[INFO]  "+probe), strings.Count(out, "[DEBUG] "+probe)
	if info == 0 || info > 4*10 || info+debug != n {
		t.Errorf("%d probes at info level and %d at debug, of %d; want a few at info, all logged:\n%.2000s", info, debug, n, out)
	}
	warned := strings.Count(out, "[WARN]")
	if warned == 0 || warned > 4*10 {
		t.Errorf("%d warnings for %d failed handshakes; want a few:\n%.2000s", warned, n, out)
	}
}
