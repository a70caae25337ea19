package direct

import (
	"io"
	"net"
)

// PipeConn is one side of a connection's pipes, for tests that play the
// host or the plugin by hand.
type PipeConn interface {
	io.ReadWriteCloser
	CloseWrite() error
}

func (p *pipeConn) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipeConn) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipeConn) CloseWrite() error           { return p.w.Close() }

// OfferPipes plays the host's side of a new connection on c.
func OfferPipes(c net.Conn) (PipeConn, error) { return offerPipes(c) }

// TakePipes plays the plugin's side of a new connection on c.
func TakePipes(c net.Conn) (PipeConn, error) { return takePipes(c) }
