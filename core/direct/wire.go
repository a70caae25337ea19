package direct

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/tlspin/tlspin/core/verify"
)

// MaxFrame caps a frame's body either way: a larger length is refused
// before anything is allocated, and the connection closed.
const MaxFrame = 1 << 20

// Methods a request may name.
const (
	methodDescribe  = "describe"
	methodConfigure = "configure"
	methodVerify    = "verify"
	methodCommit    = "commit"
	methodWatch     = "watch"
	methodShutdown  = "shutdown"
)

// request is what the host sends.
type request struct {
	// ID is the connection's count of requests, in the frame's header:
	// the answer repeats it.
	ID     uint32
	Method string
	// Timeout is what is left of the host's deadline for the call, so
	// that the verifier stops working when the host stops waiting.
	Timeout time.Duration
	Options map[string][]string // configure
	// Peer is the peer of a verify or commit. The host's is the caller's
	// request, which the frame only reads; the plugin's is decoded anew for
	// each request, and is the verifier's to keep.
	Peer *verify.Request
}

// peer is the request's peer, or an empty one for a request without.
func (r *request) peer() *verify.Request {
	if r.Peer == nil {
		return &verify.Request{}
	}
	return r.Peer
}

// response is what the plugin answers: Error, or the result of the method
// asked (nothing for commit, watch and shutdown), or, on a watch
// connection after the first answer, a PolicyChange.
type response struct {
	ID           uint32 // the request's it answers, in the frame's header
	Error        *remoteError
	Description  *description
	Configured   *configured
	Verdict      *verdict
	PolicyChange *policyChange
}

type remoteError struct {
	Message   string
	BadOption bool
}

type description struct {
	Name    string
	Version string
	Summary string
	Options []option
	// Notifies says the verifier reports policy changes (watch); a host
	// need not open a watch connection to one that does not.
	Notifies bool
}

type option struct {
	Name        string
	Description string
	Required    bool
	Repeated    bool
}

type configured struct {
	NeedsChain bool
}

type verdict struct {
	Allow    bool
	Reason   string
	Matched  string
	CacheFor time.Duration
	Commit   bool
}

type policyChange struct {
	Epoch  uint64
	Reason string
}

// errOversize is a frame length over MaxFrame.
type errOversize uint32

func (n errOversize) Error() string {
	return fmt.Sprintf("frame of %d bytes exceeds %d", uint32(n), MaxFrame)
}

// writeFrame sends a frame (request.frame, response.frame) in one write.
func writeFrame(w io.Writer, frame []byte) error {
	_, err := w.Write(frame)
	return err
}

// readFrame reads one frame: its id and its body; errOversize for a
// length over MaxFrame (nothing read past the header), io.EOF for a
// connection closed between frames, io.ErrUnexpectedEOF for one closed
// inside a frame. The body is read into buf when it fits: the host's
// reads pass the last answer's body, whose texts it has copied; the
// plugin's pass nil, since a verifier may keep the certificates.
func readFrame(r *bufio.Reader, buf []byte) (id uint32, body []byte, err error) {
	// Peek, not a read into an array, which would be allocated.
	h, err := r.Peek(frameHeader)
	switch {
	case len(h) == frameHeader:
	case len(h) > 0 && err == io.EOF:
		return 0, nil, io.ErrUnexpectedEOF
	default:
		return 0, nil, err
	}
	size, id := binary.BigEndian.Uint32(h[:4]), binary.BigEndian.Uint32(h[4:])
	if size > MaxFrame {
		return 0, nil, errOversize(size)
	}
	r.Discard(frameHeader)
	if body = buf[:0]; cap(body) < int(size) {
		body = make([]byte, size)
	}
	body = body[:size]
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return id, body, nil
}

func toDescription(d *verify.Description) *description {
	w := &description{Name: d.Name, Version: d.Version, Summary: d.Summary}
	for _, o := range d.Options {
		w.Options = append(w.Options, option(o))
	}
	return w
}

// description keeps at most verify.MaxTextLen of each text.
func (w *description) description() *verify.Description {
	d := &verify.Description{Name: verify.Truncate(w.Name), Version: verify.Truncate(w.Version), Summary: verify.Truncate(w.Summary)}
	for _, o := range w.Options {
		d.Options = append(d.Options, verify.Option{Name: verify.Truncate(o.Name), Description: verify.Truncate(o.Description), Required: o.Required, Repeated: o.Repeated})
	}
	return d
}

// verdict checks and cleans what the plugin sent (verify.CleanVerdict).
func (w *verdict) verdict() (*verify.Verdict, error) {
	return verify.CleanVerdict(&verify.Verdict{Allow: w.Allow, Reason: w.Reason, Matched: w.Matched, CacheFor: w.CacheFor, Commit: w.Commit})
}
