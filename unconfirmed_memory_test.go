package tlspin_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/e2e"
)

// TestUnconfirmedKeepsNoChains is the attack of a client that presents
// the pinned client's certificate, which is public, without its key,
// against a server that never calls Confirm (net/http on
// HookServerConfig), whose logger says what it accepts (info level).
// The verifiers allow the certificate before crypto/tls checks the
// client's signature, and the line saying the client was accepted waits
// for a Confirm that never comes, for a minute, with 1,024 others. The
// client pads its chain to some 200 KiB with copies of the leaf (a
// verifier of leaves looks at the first alone) and sends a server name of
// 60 KiB. What the server keeps for it is counted against the 16 MiB
// that PendingSet allows; the log line held the whole request, counted
// as nothing: 1,024 such clients held some 260 MiB.
func TestUnconfirmedKeepsNoChains(t *testing.T) {
	const (
		clients = 60
		chain   = 200 << 10
		name    = 60 << 10
		// What a client may cost while it waits: its connection, its
		// verdicts, the log line to come (and the heap's noise, some
		// MiB). Not what it sent.
		perClient = 96 << 10
	)
	victim := newIdentity("victim")
	v := start(t, []string{"sha256pin:pin=" + victim.sha},
		tlspin.WithLogger(hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Info})))
	cfg := v.ServerConfig(newIdentity("server").cert)
	addr := e2e.Serve(t, listen(t), func(raw net.Conn) {
		c := tls.Server(raw, cfg)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Handshake() // and no Confirm, as net/http
		c.Close()
	})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	padded := tls.Certificate{PrivateKey: key}
	for len(padded.Certificate)*len(victim.cert.Certificate[0]) < chain {
		padded.Certificate = append(padded.Certificate, victim.cert.Certificate[0])
	}
	connect := func(i int) {
		sni := fmt.Sprintf("c%d.%s", i, strings.Repeat("a", name))
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: sni, Certificates: []tls.Certificate{padded}})
		if err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.Read(make([]byte, 1)) // the server's refusal of the signature
		c.Close()
	}
	connect(-1) // the verifiers' first answers, which stay
	before := heap()
	for i := range clients {
		connect(i)
	}
	if n := v.Stats().Unconfirmed; n != clients+1 {
		t.Fatalf("%d connections wait for Confirm, want %d: the attack did not take place", n, clients+1)
	}
	grown := int64(heap()) - int64(before)
	t.Logf("%d bytes held for each client", grown/clients)
	if grown > clients*perClient {
		t.Fatalf("the server holds %d KiB for %d clients that never proved a key (%d KiB each), want at most %d KiB each: it keeps what they sent, uncounted", grown>>10, clients, grown/clients>>10, perClient>>10)
	}
}

// heap returns the bytes of live objects, once the garbage is collected.
func heap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
