//go:build unix

package adversary

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestTOFUFirstUseRaceBetweenProcesses: two `tlspin send` processes
// sharing a tofu store meet a never-seen server at once, one through a
// man-in-the-middle with another key (the same HOST:PORT, since the
// server hands out its two keys in turn). Both allowed a first use; the
// first to record wins, and the other's record finds another key recorded
// for the server. send used to warn ("could not record") and send its
// message to that server all the same, exiting 0. Now that send is
// rejected as by a verifier that failed (exit 4: the record failed) and
// sends nothing. The same for two `tlspin serve`
// sharing a store and one client address presenting two keys.
func TestTOFUFirstUseRaceBetweenProcesses(t *testing.T) {
	dir := t.TempDir()
	keys := [2]e2e.Identity{e2e.NewIdentity(t, dir, "real"), e2e.NewIdentity(t, dir, "mitm")}

	t.Run("send", func(t *testing.T) {
		var n atomic.Int32
		got := make(chan string, 2)
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return &keys[(n.Add(1)-1)%2].Cert, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		handshakes := make(chan struct{}, 2)
		addr := e2e.Serve(t, ln, func(c net.Conn) {
			c.SetDeadline(time.Now().Add(20 * time.Second))
			if c.(*tls.Conn).Handshake() != nil {
				return
			}
			handshakes <- struct{}{}
			b := make([]byte, 64)
			if k, _ := c.Read(b); k > 0 {
				got <- string(b[:k])
			}
		})
		pins := filepath.Join(t.TempDir(), "known_pins")
		release := e2e.HoldTofuLock(t, pins)
		var procs [2]*e2e.Proc
		for i := range procs {
			procs[i] = e2e.StartTlspin(t, strings.NewReader(""), "send", "--verifier", "tofu:file="+pins, addr, "secret")
		}
		for range 2 {
			select {
			case <-handshakes:
			case <-time.After(20 * time.Second):
				t.Fatal("the handshakes did not complete")
			}
		}
		release()
		codes := map[int]int{}
		for _, p := range procs {
			codes[p.Wait(t, 20*time.Second)]++
		}
		if codes[0] != 1 || codes[4] != 1 {
			t.Errorf("ATTACK: exit codes %v, want one 0 and one 4", codes)
		}
		if k := len(got); k != 1 {
			t.Errorf("ATTACK: the message reached %d servers, want 1", k)
		}
	})

	t.Run("serve", func(t *testing.T) {
		srv := e2e.NewIdentity(t, dir, "server")
		pins := filepath.Join(t.TempDir(), "known_pins")
		release := e2e.HoldTofuLock(t, pins)
		var procs [2]*e2e.Proc
		for i := range procs {
			procs[i] = e2e.StartServe(t, "--cert", srv.File, "--verifier", "tofu:file="+pins)
		}
		conns := make(chan *tls.Conn, 2)
		for i, p := range procs {
			c, err := tls.Dial("tcp", p.Addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{keys[i].Cert}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("secret line\n"))
			conns <- c
		}
		// Both servers verified their client: each waits for the lock.
		if !wait.Until(20*time.Second, func() bool {
			return strings.Contains(procs[0].Stderr.String(), "waiting to record") && strings.Contains(procs[1].Stderr.String(), "waiting to record")
		}) {
			t.Fatal("the servers did not wait for the lock")
		}
		release()
		if !wait.Until(20*time.Second, func() bool {
			return strings.Count(procs[0].Stderr.String()+procs[1].Stderr.String(), "client connected")+
				strings.Count(procs[0].Stderr.String()+procs[1].Stderr.String(), "client rejected by us") == 2
		}) {
			t.Fatal("the servers did not decide")
		}
		printed := 0
		for _, p := range procs {
			printed += strings.Count(p.Stdout.String(), "secret line")
		}
		if printed != 1 {
			t.Errorf("ATTACK: %d servers printed the line, want 1: a client whose key is not the one recorded was served", printed)
		}
	})
}
