//go:build unix

package tlspin_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/e2e"
)

// TestFirstUseRaceBetweenProcesses: two processes sharing a tofu store
// meet a server never seen before at once, one with the real key and one
// with a man-in-the-middle's. Each allows its server as a first use, to
// be recorded after the handshake; the first to record wins, and the
// other's record finds another key recorded for the same peer. Dial used
// to log that ("could not record") and return the connection all the
// same: the program then talked to a server whose key is not the one
// recorded for it. Within one process tofu rejects the second key while
// the first is pending; across processes the failed record must reject.
func TestFirstUseRaceBetweenProcesses(t *testing.T) {
	ids := [2]identity{newIdentity("server"), newIdentity("server")}
	tests := []struct {
		name         string
		specs        func(pins string) []string
		opts         []tlspin.Option
		ok, rejected int
	}{
		{"tofu alone", func(pins string) []string { return []string{"tofu:file=" + pins} }, nil, 1, 1},
		{"require all", func(pins string) []string {
			return []string{"tofu:file=" + pins, "spkipin:pin=" + ids[0].spki + ",pin=" + ids[1].spki}
		}, nil, 1, 1},
		// Another verifier allows both keys without a record: the failed
		// record takes back tofu's allow only.
		{"require any: another verifier allows", func(pins string) []string {
			return []string{"tofu:file=" + pins, "spkipin:pin=" + ids[0].spki + ",pin=" + ids[1].spki}
		}, []tlspin.Option{tlspin.WithRequire(tlspin.RequireAny)}, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			done := make(chan struct{}, 2)
			ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
				// One key for the first connection, another for the
				// second: the same HOST:PORT, as a man-in-the-middle on
				// one path shows it.
				GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
					return &ids[(n.Add(1)-1)%2].cert, nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			addr := e2e.Serve(t, ln, func(c net.Conn) {
				if c.(*tls.Conn).Handshake() == nil {
					done <- struct{}{}
				}
				io.Copy(io.Discard, c)
			})
			pins := filepath.Join(t.TempDir(), "known_pins")
			// Hold the store's lock, as a third process recording would,
			// so that both verify before either records.
			release := e2e.HoldTofuLock(t, pins)
			procs := [2]*tlspin.Verifiers{start(t, tt.specs(pins), tt.opts...), start(t, tt.specs(pins), tt.opts...)}
			type result struct {
				conn net.Conn
				err  error
			}
			results := make(chan result, 2)
			for _, v := range procs {
				go func() {
					c, err := v.Dial(context.Background(), "tcp", addr)
					results <- result{c, err}
				}()
			}
			for range 2 {
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("the handshakes did not complete")
				}
			}
			release()
			var ok, rejected int
			for range 2 {
				r := <-results
				switch {
				case r.err == nil:
					ok++
					r.conn.Close()
				// No verdict: the record failed, as an error of Verify is
				// a verifier that failed (trying again brings the verdict
				// on the key now recorded).
				case errors.Is(r.err, tlspin.ErrVerifierFailed) && strings.Contains(r.err.Error(), "REMOTE HOST IDENTIFICATION HAS CHANGED"):
					rejected++
				default:
					t.Errorf("Dial: %v, want a rejection saying the key recorded meanwhile is another", r.err)
				}
			}
			if ok != tt.ok || rejected != tt.rejected {
				t.Errorf("ATTACK: %d connections returned, %d rejected; want %d and %d", ok, rejected, tt.ok, tt.rejected)
			}
			if recs, _ := os.ReadFile(pins); strings.Count(string(recs), "\n127.0.0.1:") != 1 {
				t.Errorf("the store records, want one pin:\n%s", recs)
			}
		})
	}
}

// TestFirstUseRecordedMeanwhile: a program's connection allowed as a
// first use, whose confirm comes after another process recorded another
// key for the server: confirm returns the rejection, the connection
// must not be used.
func TestFirstUseRecordedMeanwhile(t *testing.T) {
	c, confirm := firstUseRecordedMeanwhile(t)
	err := confirm(context.Background(), c)
	var re *tlspin.RejectionError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "REMOTE HOST IDENTIFICATION HAS CHANGED") {
		t.Fatalf("ATTACK: confirm = %v, want a *RejectionError: another key was recorded for the server", err)
	}
}

// firstUseRecordedMeanwhile returns a connection made with
// ClientConfigForAddr and tofu, allowed as a first use, and its confirm,
// not yet called: meanwhile another Verifiers on the same pins file
// recorded another key for the server (which presents one of two keys in
// turn).
func firstUseRecordedMeanwhile(t *testing.T) (*tls.Conn, func(context.Context, *tls.Conn) error) {
	t.Helper()
	ids := [2]identity{newIdentity("server"), newIdentity("server")}
	var n atomic.Int32
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &ids[(n.Add(1)-1)%2].cert, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := e2e.Serve(t, ln, func(c net.Conn) { io.Copy(io.Discard, c) })
	pins := filepath.Join(t.TempDir(), "known_pins")
	here, there := start(t, []string{"tofu:file=" + pins}), start(t, []string{"tofu:file=" + pins})
	cfg, confirm := here.ClientConfigForAddr("", addr)
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	other, err := there.Dial(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	return c, confirm
}
