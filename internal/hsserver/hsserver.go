// Package hsserver is a loopback TLS server that completes one handshake
// on each connection and closes it: what tlspin bench and tlspin compare
// run their handshakes against.
package hsserver

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// Server accepts connections on 127.0.0.1 and runs a handshake on each.
type Server struct {
	ln net.Listener
	wg sync.WaitGroup
}

// Listen starts a server with cfg on an ephemeral loopback port. Each
// connection gets at most connTimeout for its handshake.
func Listen(cfg *tls.Config, connTimeout time.Duration) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("hsserver: %w", err)
	}
	s := &Server{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() {
				c.SetDeadline(time.Now().Add(connTimeout))
				tc := tls.Server(c, cfg)
				tc.Handshake()
				tc.Close()
			})
		}
	})
	return s, nil
}

// Addr is the address to dial.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting and waits for the handshakes in progress.
func (s *Server) Close() {
	s.ln.Close()
	s.wg.Wait()
}
