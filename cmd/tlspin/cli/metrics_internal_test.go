package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/proxy"
)

// TestMetricsServerIsBounded is the attack of clients that open
// connections to `proxy --metrics` and keep them: the HTTP server runs in
// the proxy's process, outside its connection limits, and held every
// kept-alive connection forever. Now an idle connection is closed after
// the timeout, and at most maxConns are served at once: one more waits
// until another goes.
func TestMetricsServerIsBounded(t *testing.T) {
	const maxConns, timeout = 3, 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := serveMetricsOn(ln, proxy.NewMetrics("test"), maxConns, timeout)
	defer stop()
	addr := ln.Addr().String()
	scrape := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	var held []net.Conn
	for range maxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := scrape(c); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// One more is not served while the others are held...
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetDeadline(time.Now().Add(timeout / 3))
	fmt.Fprintf(extra, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := extra.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("a connection over the limit was served (%v)", err)
	}
	// ...and the idle ones are closed after the timeout, so it then is.
	for _, c := range held {
		c.SetReadDeadline(time.Now().Add(10 * timeout))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("ATTACK: an idle connection is still held after %s (%v)", 10*timeout, err)
		}
	}
	again, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if err := scrape(again); err != nil {
		t.Fatalf("a scrape after the idle connections went: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
