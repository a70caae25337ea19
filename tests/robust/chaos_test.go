package robust

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/e2e"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/server"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// handshake runs one mutual-TLS exchange as cert and reports whether the
// server accepted it: the server reads to EOF and closes cleanly only for
// a client it accepted; a refused client gets an alert.
func handshake(addr string, cert tls.Certificate, msg string) bool {
	d := &net.Dialer{Timeout: 3 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return false
	}
	if err := c.CloseWrite(); err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, c)
	return err == nil
}

// TestChaos runs concurrent handshakes with good and bad client
// certificates against a server whose verifier plugin (spkipin, a real
// process) is SIGKILLed and SIGSTOPped several times. No bad certificate
// may ever be accepted; the server keeps serving; after each restart a
// good client is verified again within a second.
func TestChaos(t *testing.T) {
	dir := t.TempDir()
	srvID := e2e.NewIdentity(t, dir, "server")
	good := e2e.NewIdentity(t, dir, "good")
	bad := e2e.NewIdentity(t, dir, "bad")

	const verifyTimeout = 300 * time.Millisecond
	f := &host.Finder{Builtins: []string{"spkipin"}, Self: testbin.Tlspin(t), SelfArgs: func(n string) []string { return []string{"__verifier", n} }}
	found, err := f.Find("spkipin")
	if err != nil {
		t.Fatal(err)
	}
	plug, err := host.Start(context.Background(), found.Spec(verify.Options{"pin": {good.SPKI()}}), host.Config{
		VerifyTimeout: verifyTimeout,
		MaxBackoff:    300 * time.Millisecond,
		Logger:        hclog.New(&hclog.LoggerOptions{Output: io.Discard}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer plug.Close()

	var badAccepted, goodAccepted, connects atomic.Int64
	srv, err := server.New(server.Config{
		TLS:              pintls.ServerConfig(srvID.Cert, plug, pintls.Options{Timeout: verifyTimeout}),
		HandshakeTimeout: 2 * time.Second,
		OnEvent: func(e server.Event) error {
			if e.Kind != server.EventConnect {
				return nil
			}
			connects.Add(1)
			switch e.PeerSHA256 {
			case bad.SHA256():
				badAccepted.Add(1)
			case good.SHA256():
				goodAccepted.Add(1)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() { stop(); <-served }()

	// Load: workers alternate good and bad certificates until the faults
	// are done, bounded in count.
	const workers, maxRounds = 4, 400
	var (
		wg          sync.WaitGroup
		clientBad   atomic.Int64
		total       atomic.Int64
		loadStopped = make(chan struct{})
	)
	for w := range workers {
		wg.Go(func() {
			for i := range maxRounds {
				select {
				case <-loadStopped:
					return
				default:
				}
				total.Add(1)
				if (i+w)%2 == 0 {
					handshake(addr, good.Cert, "good")
				} else if handshake(addr, bad.Cert, "bad") {
					clientBad.Add(1)
				}
			}
		})
	}

	faults := []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGKILL, syscall.SIGSTOP}
	for i, sig := range faults {
		pid := plug.Pid()
		if pid == 0 {
			t.Fatalf("fault %d: plugin not running", i)
		}
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatal(err)
		}
		var newPid int
		if !wait.Until(10*time.Second, func() bool { newPid = plug.Pid(); return newPid != 0 && newPid != pid }) {
			t.Fatalf("fault %d (%s): plugin %d not replaced", i, sig, pid)
		}
		restarted := time.Now()
		if !wait.Until(time.Second, func() bool { return handshake(addr, good.Cert, "probe") }) {
			t.Fatalf("fault %d (%s): good client not verified within 1s of the restart (pid %d)", i, sig, newPid)
		}
		t.Logf("fault %d (%s): pid %d → %d, good client verified %s after the restart", i, sig, pid, newPid, time.Since(restarted).Round(time.Millisecond))
		if !wait.Until(3*time.Second, func() bool { return !e2e.Alive(pid) }) {
			t.Errorf("fault %d (%s): old plugin %d still alive", i, sig, pid)
		}
	}
	close(loadStopped)
	wg.Wait()

	if n := badAccepted.Load(); n != 0 {
		t.Fatalf("%d connections with the bad certificate were accepted", n)
	}
	if n := clientBad.Load(); n != 0 {
		t.Fatalf("%d bad-certificate clients saw a clean exchange", n)
	}
	if goodAccepted.Load() == 0 {
		t.Fatal("no good client was ever accepted")
	}
	if !handshake(addr, good.Cert, "after the chaos") || handshake(addr, bad.Cert, "after the chaos") {
		t.Fatal("server does not decide correctly after the chaos")
	}
	t.Logf("%d handshakes under faults, %d accepted (all good), %d restarts", total.Load(), connects.Load(), plug.Restarts())
}
