//go:build linux

package tlspin_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// runners are the two ways a built-in verifier runs: this program
// re-executed over go-plugin's gRPC (it calls ServeBuiltin), and
// tlspin-builtins over the direct protocol.
func runners(t *testing.T) map[string][]tlspin.Option {
	return map[string][]tlspin.Option{
		"grpc":   nil,
		"direct": {tlspin.WithTlspinBinary(testbin.Tlspin(t))},
	}
}

// children returns the pids of this process's children, zombies
// included: a child not reaped is a leak too.
func children() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := e2e.ProcStat(pid); ok && ppid == os.Getpid() {
			out = append(out, pid)
		}
	}
	return out
}

func openFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// TestCloseLeavesNothing: a service that starts verifiers, uses every
// kind of connection (Dial, a configuration, a Listen listener with an
// accepted client and one stuck before its handshake) and closes them,
// over and over, is left with no goroutine, descriptor or child process
// more than before.
func TestCloseLeavesNothing(t *testing.T) {
	srv, cli := newIdentity("server"), newIdentity("client")
	addr := tlsServer(t, srv)
	for name, opts := range runners(t) {
		t.Run(name, func(t *testing.T) {
			runtime.GC()
			g0, f0, c0 := runtime.NumGoroutine(), openFDs(), children()
			for range 3 {
				v, err := tlspin.StartWith(context.Background(),
					[]string{"sha256pin:pin=" + srv.sha + ",pin=" + cli.sha, "tofu:file=" + t.TempDir() + "/known_pins"}, opts...)
				if err != nil {
					t.Fatal(err)
				}
				c, err := v.Dial(context.Background(), "tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				if c, err := tls.Dial("tcp", addr, v.ClientConfig("localhost")); err == nil {
					c.Close() // tofu cannot record here: rejected, or not
				}
				ln, err := v.Listen("tcp", "127.0.0.1:0", srv.cert)
				if err != nil {
					t.Fatal(err)
				}
				stuck, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				good, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cli.cert}})
				if err != nil {
					t.Fatal(err)
				}
				sc, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				v.Close()
				if _, err := ln.Accept(); !errors.Is(err, tlspin.ErrClosed) {
					t.Errorf("Accept after Close: %v, want ErrClosed", err)
				}
				sc.Close()
				io.Copy(io.Discard, good)
				good.Close()
				stuck.Close()
			}
			if !wait.Until(5*time.Second, func() bool {
				return runtime.NumGoroutine() <= g0 && openFDs() <= f0 && len(children()) <= len(c0)
			}) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("after Close: %d goroutines (%d before), %d descriptors (%d before), children %v (%v before)\n%s",
					runtime.NumGoroutine(), g0, openFDs(), f0, children(), c0, buf)
			}
		})
	}
}

// TestPluginKilledDuringHandshakes: the verifier's process is killed
// (SIGKILL) while many goroutines handshake through it. Every handshake
// that fails meanwhile fails closed with a *RejectionError that matches
// ErrVerifierFailed (trying again may succeed), never ErrRejected, which
// would say the server is not the one expected; and handshakes succeed
// again once the plugin is restarted.
func TestPluginKilledDuringHandshakes(t *testing.T) {
	srv := newIdentity("server")
	addr := tlsServer(t, srv)
	for name, opts := range runners(t) {
		t.Run(name, func(t *testing.T) {
			c0 := children()
			v := start(t, []string{"sha256pin:pin=" + srv.sha}, append(opts, tlspin.WithoutCache())...)
			var plugin int
			if !wait.Until(5*time.Second, func() bool {
				for _, pid := range children() {
					if !slices.Contains(c0, pid) {
						plugin = pid
					}
				}
				return plugin != 0
			}) {
				t.Fatal("no plugin process")
			}
			var (
				stop       atomic.Bool
				ok, failed atomic.Int64
				mu         sync.Mutex
				wrong      []error
				wg         sync.WaitGroup
			)
			for range 8 {
				wg.Go(func() {
					for !stop.Load() {
						c, err := tls.Dial("tcp", addr, v.ClientConfig("localhost"))
						var re *tlspin.RejectionError
						switch {
						case err == nil:
							c.Close()
							ok.Add(1)
						case errors.As(err, &re) && re.Failed() && errors.Is(err, tlspin.ErrVerifierFailed) && !errors.Is(err, tlspin.ErrRejected):
							failed.Add(1)
						default:
							mu.Lock()
							wrong = append(wrong, err)
							mu.Unlock()
						}
					}
				})
			}
			if !wait.Until(5*time.Second, func() bool { return ok.Load() >= 8 }) {
				t.Fatal("no handshake succeeded before the kill")
			}
			if err := syscall.Kill(plugin, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if !wait.Until(5*time.Second, func() bool { return v.Stats().PluginRestarts >= 1 }) {
				t.Error("the killed plugin was not restarted")
			}
			after := ok.Load()
			if !wait.Until(5*time.Second, func() bool { return ok.Load() >= after+8 }) {
				t.Error("no handshake succeeded after the restart")
			}
			stop.Store(true)
			wg.Wait()
			for _, err := range wrong {
				t.Errorf("a handshake during the kill: %v\nwant a *RejectionError matching ErrVerifierFailed, not ErrRejected", err)
			}
			t.Logf("%d handshakes succeeded, %d failed closed", ok.Load(), failed.Load())
		})
	}
}
