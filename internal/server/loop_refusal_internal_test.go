package server

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestPerIPRefusalWarns: a connection refused because its address holds
// too many already is a warning, so that a program whose connections are
// reset learns why; a client that keeps trying gets three warnings, then
// one per second, the next one counting those not logged, and does not
// use up the warnings of another address refused in the same second.
func TestPerIPRefusalWarns(t *testing.T) {
	var logs syncbuf.Buffer
	held := make(chan struct{}, 1)
	loop := NewLoop(HandlerFunc(func(ctx context.Context, c *Conn) {
		c.Established()
		select {
		case held <- struct{}{}:
		default:
		}
		io.Copy(io.Discard, c) // until the test closes it
	}), Limits{MaxConnsPerIP: 1}, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn}))
	var clock atomic.Int64
	clock.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	loop.refusals.Now = func() time.Time { return time.Unix(0, clock.Load()) }

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ctx, ln) }()
	defer func() { cancel(); <-served }()

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	from := "127.0.0.1"
	dial := func() {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if errors.Is(err, syscall.ECONNRESET) {
			return // refused, and reset before connect returned
		}
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	dial()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the first connection was not served")
	}

	warnings := func() []string {
		var out []string
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "[WARN]") && strings.Contains(line, "too many connections from this address") {
				out = append(out, line)
			}
		}
		return out
	}
	steps := []struct {
		name    string
		from    string        // the client's address
		advance time.Duration // of the clock, before dialling
		dials   int
		refused uint64 // in all, once dialled
		warned  int    // warnings in all
		says    string // the last warning says
	}{
		{"the first refusal", "127.0.0.1", 0, 1, 1, 1, "max_conns_per_ip=1"},
		{"more within the interval: two more, in a row", "127.0.0.1", time.Second / 2, 3, 4, 3, ""},
		{"the next interval", "127.0.0.1", time.Second, 1, 5, 4, "suppressed=1"},
		{"a quiet interval later", "127.0.0.1", 10 * time.Second, 1, 6, 5, ""},
		{"a flood, then another address", "127.0.0.1", time.Second, 20, 26, 8, ""},
		// Its first connection is served; the second is refused.
		{"another address, in the same second", "127.0.0.2", 0, 2, 27, 9, "suppressed=17"},
	}
	wasSuppressed := map[int]bool{4: true, 9: true} // by number of warnings
	for _, st := range steps {
		clock.Add(int64(st.advance))
		from = st.from
		for range st.dials {
			dial()
		}
		if !wait.Until(10*time.Second, func() bool { return loop.Stats().RefusedPerIP >= st.refused }) {
			t.Fatalf("%s: %d refused, want %d", st.name, loop.Stats().RefusedPerIP, st.refused)
		}
		w := warnings()
		if len(w) != st.warned {
			t.Fatalf("%s: %d warnings, want %d:\n%s", st.name, len(w), st.warned, logs.String())
		}
		last := w[len(w)-1]
		if !strings.Contains(last, "remote="+st.from+":") {
			t.Errorf("%s: warning %q does not name the address", st.name, last)
		}
		if !strings.Contains(last, st.says) {
			t.Errorf("%s: warning %q, want it to say %q", st.name, last, st.says)
		}
		if got := strings.Contains(last, "suppressed="); got != wasSuppressed[st.warned] {
			t.Errorf("%s: warning %q: counts suppressed refusals: %v, want %v", st.name, last, got, wasSuppressed[st.warned])
		}
	}
}
