package direct

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tlspin/tlspin/core/verify"
)

// MaxFrame caps a frame's JSON either way: a larger length is refused
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
	Method string `json:"method"`
	// Timeout is what is left of the host's deadline for the call, so
	// that the verifier stops working when the host stops waiting.
	Timeout time.Duration       `json:"timeout_ns,omitempty"`
	Options map[string][]string `json:"options,omitempty"` // configure
	Peer    *peer               `json:"peer,omitempty"`    // verify, commit
}

// peer is a verify.Request; []byte travels as base64.
type peer struct {
	Chain       [][]byte `json:"chain"`
	ServerName  string   `json:"server_name,omitempty"`
	Side        int      `json:"side"`
	RemoteAddr  string   `json:"remote_addr,omitempty"`
	TLSVersion  uint16   `json:"tls_version,omitempty"`
	CipherSuite uint16   `json:"cipher_suite,omitempty"`
	ALPN        string   `json:"alpn,omitempty"`
	DidResume   bool     `json:"did_resume,omitempty"`
}

// response is what the plugin answers: Error, or the result of the method
// asked (nothing for commit, watch and shutdown), or, on a watch
// connection after the first answer, a PolicyChange.
type response struct {
	Error        *remoteError  `json:"error,omitempty"`
	Description  *description  `json:"description,omitempty"`
	Configured   *configured   `json:"configured,omitempty"`
	Verdict      *verdict      `json:"verdict,omitempty"`
	PolicyChange *policyChange `json:"policy_change,omitempty"`
}

type remoteError struct {
	Message   string `json:"message"`
	BadOption bool   `json:"bad_option,omitempty"`
}

type description struct {
	Name    string   `json:"name"`
	Version string   `json:"version,omitempty"`
	Summary string   `json:"summary,omitempty"`
	Options []option `json:"options,omitempty"`
	// Notifies says the verifier reports policy changes (watch); a host
	// need not open a watch connection to one that does not.
	Notifies bool `json:"notifies,omitempty"`
}

type option struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
	Repeated    bool   `json:"repeated,omitempty"`
}

type configured struct {
	NeedsChain bool `json:"needs_chain,omitempty"`
}

type verdict struct {
	Allow    bool          `json:"allow"`
	Reason   string        `json:"reason,omitempty"`
	Matched  string        `json:"matched,omitempty"`
	CacheFor time.Duration `json:"cache_for_ns,omitempty"`
	Commit   bool          `json:"commit,omitempty"`
}

type policyChange struct {
	Epoch  uint64 `json:"epoch"`
	Reason string `json:"reason,omitempty"`
}

// Warm builds, once per process, the JSON codecs a Client uses, which
// encoding/json otherwise builds on first use: about 1 ms on a small
// machine, inside the first calls of a process's first launch. A host
// calls it while it waits for the plugin's handshake line. (A plugin
// would gain little: the host connects a fraction of a millisecond after
// the line.)
func Warm() { warmOnce.Do(warm) }

var warmOnce sync.Once

func warm() {
	_, _ = json.Marshal(&request{Options: map[string][]string{"k": {"v"}}, Peer: &peer{Chain: [][]byte{{0}}}})
	_ = json.Unmarshal([]byte(`{"error":{},"description":{"options":[{}]},"configured":{},"verdict":{},"policy_change":{}}`), new(response))
}

// errOversize is a frame length over MaxFrame.
type errOversize uint32

func (n errOversize) Error() string {
	return fmt.Sprintf("frame of %d bytes exceeds %d", uint32(n), MaxFrame)
}

// writeFrame sends v as one frame, in one write.
func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	_, err = w.Write(append(buf, b...))
	return err
}

// readFrame reads one frame's body: errOversize for a length over
// MaxFrame (nothing read past the length), io.EOF for a connection closed
// between frames, io.ErrUnexpectedEOF for one closed inside a frame.
func readFrame(r *bufio.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > MaxFrame {
		return nil, errOversize(size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

func toPeer(r *verify.Request) *peer {
	if r == nil {
		return &peer{}
	}
	return &peer{Chain: r.PeerChain, ServerName: r.ServerName, Side: int(r.Side), RemoteAddr: r.RemoteAddr,
		TLSVersion: r.TLSVersion, CipherSuite: r.CipherSuite, ALPN: r.ALPN, DidResume: r.DidResume}
}

func (p *peer) request() *verify.Request {
	if p == nil {
		return &verify.Request{}
	}
	return &verify.Request{PeerChain: p.Chain, ServerName: p.ServerName, Side: verify.Side(p.Side), RemoteAddr: p.RemoteAddr,
		TLSVersion: p.TLSVersion, CipherSuite: p.CipherSuite, ALPN: p.ALPN, DidResume: p.DidResume}
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

func toVerdict(v *verify.Verdict) *verdict {
	return &verdict{Allow: v.Allow, Reason: v.Reason, Matched: v.Matched, CacheFor: v.CacheFor, Commit: v.Commit}
}

// verdict checks and cleans what the plugin sent (verify.CleanVerdict).
func (w *verdict) verdict() (*verify.Verdict, error) {
	return verify.CleanVerdict(&verify.Verdict{Allow: w.Allow, Reason: w.Reason, Matched: w.Matched, CacheFor: w.CacheFor, Commit: w.Commit})
}
