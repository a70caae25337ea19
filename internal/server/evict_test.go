package server_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/server"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestEvictionTakesTheFloodingSource: with a budget full, the connection
// closed to make room is one of the source holding the most, not the one
// idle the longest whoever holds it. An honest client's connection, from
// an address of its own and older than the others, must survive a flood
// of connections from one source, or from a few each under the per-IP
// cap. Closing the idlest of all let one source that keeps the pending
// budget full close the handshake of every other client, so that none
// got in.
func TestEvictionTakesTheFloodingSource(t *testing.T) {
	for _, tt := range []struct {
		name string
		lim  server.Limits
		// established: the honest client, and then each flooding
		// connection, is established before the next one arrives (the
		// MaxConns budget fills); otherwise all stay pending (the
		// MaxHandshakes budget fills).
		established bool
		flooders    []string // the flooding sources, in turn
		each        int      // connections from each
	}{
		{
			name:     "pending: one source",
			lim:      server.Limits{MaxHandshakes: 8, MaxConns: 64},
			flooders: []string{"127.0.0.3"},
			each:     20,
		},
		{
			name:     "pending: three sources under the per-IP cap",
			lim:      server.Limits{MaxHandshakes: 8, MaxConns: 64, MaxConnsPerIP: 8},
			flooders: []string{"127.0.0.3", "127.0.0.4", "127.0.0.5"},
			each:     7,
		},
		{
			name:        "established: one source",
			lim:         server.Limits{MaxHandshakes: 8, MaxConns: 8},
			established: true,
			flooders:    []string{"127.0.0.3"},
			each:        20,
		},
		{
			name:        "established: three sources under the per-IP cap",
			lim:         server.Limits{MaxHandshakes: 8, MaxConns: 8, MaxConnsPerIP: 8},
			established: true,
			flooders:    []string{"127.0.0.3", "127.0.0.4", "127.0.0.5"},
			each:        7,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.lim.HandshakeTimeout = time.Minute // nobody times out here
			loop, addr, _ := echoLoop(t, tt.lim)

			honest := dialFrom(t, "127.0.0.2", addr)
			defer honest.Close()
			if tt.established {
				echo(t, honest, "hello\nfirst\n", "first\n")
			}
			if !wait.Until(10*time.Second, func() bool { return loop.Stats().Accepted == 1 }) {
				t.Fatal("the honest connection was not accepted")
			}
			// From here on the honest connection is the idlest of all.

			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for range tt.each {
				for _, src := range tt.flooders {
					c := dialFrom(t, src, addr)
					held = append(held, c)
					if tt.established {
						echo(t, c, "hello\nflood\n", "flood\n")
					}
				}
			}
			total := 1 + len(tt.flooders)*tt.each
			if !wait.Until(10*time.Second, func() bool { return loop.Stats().Accepted == uint64(total) }) {
				t.Fatalf("accepted %d of %d connections", loop.Stats().Accepted, total)
			}
			budget := tt.lim.MaxHandshakes
			if tt.established {
				budget = tt.lim.MaxConns
			}
			if st := loop.Stats(); st.Evicted != uint64(total-budget) || st.RefusedPerIP != 0 {
				t.Fatalf("stats %+v, want %d evicted, none refused", st, total-budget)
			}
			send := "still\n"
			if !tt.established {
				send = "hello\n" + send
			}
			echo(t, honest, send, "still\n")
		})
	}
}

// echo writes send on c and checks that the echo loop answers want.
func echo(t *testing.T, c net.Conn, send, want string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, send); err != nil {
		t.Fatalf("write from %s: %v", c.LocalAddr(), err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("%s: echo %q, %v; want %q", c.LocalAddr(), got, err, want)
	}
}
