// Package hsserver is a loopback TLS server that completes one handshake
// on each connection and closes it: what tlspin bench and tlspin compare
// run their handshakes against. It is a handler on internal/server's Loop.
package hsserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/tlspin/tlspin/internal/server"
)

// maxConns is far above any benchmark's concurrency: the loop's limits
// are for hostile networks, this server only ever sees its own clients.
const maxConns = 4096

// Server accepts connections on 127.0.0.1 and runs a handshake on each.
type Server struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// Listen starts a server with cfg on an ephemeral loopback port. Each
// connection gets at most connTimeout for its handshake.
func Listen(cfg *tls.Config, connTimeout time.Duration) (*Server, error) {
	return listen(cfg, connTimeout, func(*tls.Conn) {})
}

// ListenDrain is Listen for clients that send something after the
// handshake (tlspin send): each connection is read until the client
// closes its side, within connTimeout.
func ListenDrain(cfg *tls.Config, connTimeout time.Duration) (*Server, error) {
	return listen(cfg, connTimeout, func(tc *tls.Conn) {
		tc.SetDeadline(time.Now().Add(connTimeout))
		_, _ = io.Copy(io.Discard, tc)
	})
}

// listen runs after on each connection whose handshake succeeded.
func listen(cfg *tls.Config, connTimeout time.Duration, after func(*tls.Conn)) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("hsserver: %w", err)
	}
	loop := server.NewLoop(server.HandlerFunc(func(ctx context.Context, c *server.Conn) {
		if tc, err := c.Handshake(ctx, cfg, nil); err == nil {
			after(tc)
			tc.Close()
		}
	}), server.Limits{
		MaxConns:         maxConns,
		MaxHandshakes:    maxConns,
		MaxConnsPerIP:    -1,
		HandshakeTimeout: connTimeout,
		GracePeriod:      connTimeout,
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- loop.Serve(ctx, ln) }()
	return s, nil
}

// Addr is the address to dial.
func (s *Server) Addr() string { return s.addr }

// Close stops accepting and waits for the handshakes in progress.
func (s *Server) Close() {
	s.cancel()
	<-s.done
}
