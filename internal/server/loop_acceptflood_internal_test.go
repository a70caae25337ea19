package server

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/internal/syncbuf"
)

// scriptedListener answers its i-th Accept (from 0) with next(i).
type scriptedListener struct {
	next func(i int) (net.Conn, error)
	i    int
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	i := l.i
	l.i++
	return l.next(i)
}
func (l *scriptedListener) Close() error   { return nil }
func (l *scriptedListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestAcceptErrorWarningsAreBounded: out of file descriptors, accept
// fails, then succeeds once a descriptor is freed, then fails again. The
// back-off started afresh after each success, and so did the warnings:
// one each five milliseconds, two hundred lines a second for as long as
// the server was short of descriptors. The first is a warning, then one
// an interval, counting those left out; the loop still retries.
func TestAcceptErrorWarningsAreBounded(t *testing.T) {
	const flood = 40 // failed accepts, each followed by a successful one
	var logs syncbuf.Buffer
	loop := NewLoop(HandlerFunc(func(ctx context.Context, c *Conn) {}), Limits{},
		hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn}))
	var clock atomic.Int64
	clock.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	loop.acceptErrors.Now = func() time.Time { return time.Unix(0, clock.Load()) }

	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	var served []net.Conn
	ln := &scriptedListener{next: func(i int) (net.Conn, error) {
		switch {
		case i < 2*flood && i%2 == 0:
			return nil, emfile
		case i < 2*flood:
			c, peer := net.Pipe()
			served = append(served, peer)
			return c, nil
		case i == 2*flood:
			// The next interval.
			clock.Add(int64(time.Second))
			return nil, emfile
		default:
			return nil, net.ErrClosed
		}
	}}
	defer func() {
		for _, c := range served {
			c.Close()
		}
	}()
	done := make(chan error, 1)
	go func() { done <- loop.Serve(context.Background(), ln) }()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve: %v, want the listener closed", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the loop did not stop")
	}
	if got := loop.Stats().Accepted; got != flood {
		t.Errorf("%d accepted, want %d: the loop must retry after each failure", got, flood)
	}
	var warnings []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "[WARN]") && strings.Contains(line, "accept failed") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 2 {
		t.Fatalf("%d warnings for %d failed accepts in two intervals, want 2:\n%s", len(warnings), flood+1, logs.String())
	}
	if !strings.Contains(warnings[0], "too many open files") {
		t.Errorf("first warning %q does not say why", warnings[0])
	}
	if want := "suppressed=39"; !strings.Contains(warnings[1], want) {
		t.Errorf("second warning %q, want it to say %s", warnings[1], want)
	}
}
