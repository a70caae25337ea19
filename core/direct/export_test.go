package direct

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/tlspin/tlspin/core/verify"
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

// ReadNow reads into b what p has to read at once, without waiting: 0
// and no error when nothing has arrived.
func ReadNow(p PipeConn, b []byte) (int, error) {
	rc, err := p.(*pipeConn).r.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	if err := rc.Read(func(fd uintptr) bool {
		n, err = syscall.Read(int(fd), b)
		return true // never wait
	}); err != nil {
		return 0, err
	}
	if errors.Is(err, syscall.EAGAIN) {
		return 0, nil
	}
	return max(n, 0), err
}

// OfferPipes plays the host's side of a new connection on the channel ch.
func OfferPipes(ch *net.UnixConn) (PipeConn, error) { return offerPipes(ch) }

// TakePipes plays the plugin's side of a new connection on the channel ch.
func TakePipes(ch *net.UnixConn) (PipeConn, error) { return takePipes(ch) }

// EncodeVerdict is a plugin's answer with v.
func EncodeVerdict(v verify.Verdict) []byte {
	return (&response{Verdict: &verdict{Allow: v.Allow, Reason: v.Reason, Matched: v.Matched, CacheFor: v.CacheFor, Commit: v.Commit}}).marshal()
}

// EncodePolicyChange is a frame of a watch connection with c.
func EncodePolicyChange(c verify.PolicyChange) []byte {
	return (&response{PolicyChange: &policyChange{Epoch: c.Epoch, Reason: c.Reason}}).marshal()
}

// EncodeEmpty is the answer to commit, watch or shutdown.
func EncodeEmpty() []byte { return (&response{}).marshal() }

// EncodeRequest is a host's request for method, with a peer.
func EncodeRequest(method string) []byte {
	return (&request{Method: method, Peer: &verify.Request{PeerChain: [][]byte{[]byte("leaf")}}}).marshal()
}

// KindVerdict is a verdict's first byte.
const KindVerdict = kindVerdict
