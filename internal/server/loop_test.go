package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/server"
)

// echoLoop runs a Loop whose handler answers each line with "ID: line"
// after a first line "hello" establishes the connection; causes receives
// why the loop ended each connection's context (nil: it did not).
func echoLoop(t *testing.T, lim server.Limits) (*server.Loop, string, chan error) {
	t.Helper()
	causes := make(chan error, 1024)
	loop := server.NewLoop(server.HandlerFunc(func(ctx context.Context, c *server.Conn) {
		defer func() { causes <- context.Cause(ctx) }()
		br := bufio.NewReader(c)
		first, err := br.ReadString('\n')
		if err != nil || first != "hello\n" || !c.Established() {
			return
		}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, strings.TrimSpace(line)+"\n"); err != nil {
				return
			}
		}
	}), lim, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loop.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("loop did not stop")
		}
	})
	return loop, ln.Addr().String(), causes
}

// roundTrip establishes a connection and checks one echo.
func roundTrip(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "hello\nping\n")
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != "ping\n" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	c.SetDeadline(time.Time{})
	return c
}

// TestLoopRunsAnyHandler: a plain-TCP handler on the loop, with its
// handshake timeout for connections that never establish and its stats.
func TestLoopRunsAnyHandler(t *testing.T) {
	loop, addr, causes := echoLoop(t, server.Limits{HandshakeTimeout: 300 * time.Millisecond})
	c := roundTrip(t, addr)
	defer c.Close()
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	select {
	case cause := <-causes:
		if !errors.Is(cause, server.ErrHandshakeTimeout) {
			t.Fatalf("silent connection ended with %v, want the handshake timeout", cause)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("silent connection outlived the handshake timeout")
	}
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Error("silent connection still open")
	}
	// The established one is not subject to the handshake timeout.
	io.WriteString(c, "still\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := bufio.NewReader(c).ReadString('\n'); got != "still\n" {
		t.Fatalf("established connection after the handshake timeout: %q, %v", got, err)
	}
	st := loop.Stats()
	if st.Open != 1 || st.Pending != 0 || st.Accepted != 2 || st.TimedOut != 1 {
		t.Errorf("stats %+v, want 1 open, 0 pending, 2 accepted, 1 timed out", st)
	}
}
