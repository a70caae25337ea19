package direct

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/rawio"
)

var (
	// ErrGarbage means the plugin answered something that is not a valid
	// answer: a body that does not decode, the wrong kind of answer, an
	// oversize frame, an invalid verdict.
	ErrGarbage = errors.New("direct: malformed answer from verifier plugin")
	// ErrTransport means the plugin could not be reached, or the
	// connection broke or closed before the answer was complete.
	ErrTransport = errors.New("direct: verifier plugin unreachable")
	// ErrClosed is matched, with ErrTransport, by calls on a closed Client
	// (with ErrNotDelivered too by those that had sent nothing).
	ErrClosed = errors.New("direct: client closed")
	// ErrNotDelivered is matched, with ErrTransport, by a call whose
	// request never reached the plugin: the plugin had closed its end of
	// the connection (or of the channel, for a new one) before the
	// request was whole in it, as when its process had died. Nothing in
	// that request can have caused the failure.
	ErrNotDelivered = errors.New("direct: request not delivered to the plugin")
	// ErrBusy means a call of VerifyWithin found every connection in use
	// by other calls for as long as it was to wait: the plugin is busy,
	// not known to be hung.
	ErrBusy = errors.New("direct: every connection to the verifier plugin busy")
)

// RemoteError is an error the verifier itself returned: a rejection, never
// a reason to restart the plugin. Message is truncated to
// verify.MaxTextLen.
type RemoteError struct {
	Message   string
	BadOption bool
}

func (e *RemoteError) Error() string { return e.Message }

// Unwrap is verify.ErrBadOption for a bad option.
func (e *RemoteError) Unwrap() error {
	if e.BadOption {
		return verify.ErrBadOption
	}
	return nil
}

// Client is a verify.Verifier that calls one plugin process. It keeps idle
// connections for the next calls; it is safe for concurrent use.
type Client struct {
	ch    *net.UnixConn // the channel connections are offered on
	slots chan struct{} // a token per call in progress, at most maxConns
	done  chan struct{} // closed by Close

	silent atomic.Bool // Describe said the verifier reports no policy changes
	// watchEnd is why the last watch ended, for WatchEnded; nil while it
	// runs or when its context ended it.
	watchEnd atomic.Pointer[error]

	mu     sync.Mutex
	idle   []*conn
	open   map[*conn]bool // idle, in a call, or watching
	closed bool
}

var (
	_ verify.Verifier  = (*Client)(nil)
	_ verify.Committer = (*Client)(nil)
)

// NewClient returns a client that opens connections on the channel ch
// (NewChannel), which it closes with the client, at most maxConns of them
// for calls: more concurrent callers wait for one (or for their context).
// A watch connection is one more.
func NewClient(ch *net.UnixConn, maxConns int) *Client {
	return &Client{ch: ch, slots: make(chan struct{}, max(1, maxConns)), done: make(chan struct{}), open: map[*conn]bool{}}
}

// conn is one connection to the plugin: its pipes for deadlines and
// Close, w and r for the frames (see internal/rawio).
type conn struct {
	*pipeConn
	w io.Writer
	r *bufio.Reader
	// buf holds the last request's frame, in holds the last answer's body
	// and resp the answer decoded from it, for the next call to reuse:
	// a connection makes one call at a time, and what the caller keeps
	// of an answer is copied out of it.
	buf, in []byte
	resp    response
	// sent counts the requests sent, the last one's ID.
	sent uint32
}

// keptBuffer is the largest buffer (a request's frame, an answer's body
// or frame) a connection keeps for the next call: a leaf and its server
// name fit many times over, and eight connections that once sent a long
// chain keep no megabytes.
const keptBuffer = 16 << 10

// Describe asks the plugin what it is.
func (c *Client) Describe(ctx context.Context) (*verify.Description, error) {
	var d *verify.Description
	err := c.call(ctx, clocks{}, &request{Method: methodDescribe}, func(r *response) error {
		if r.Description == nil || r.Description.Name == "" {
			return fmt.Errorf("%w: describe answered no name", ErrGarbage)
		}
		d = r.Description.description()
		c.silent.Store(!r.Description.Notifies)
		return nil
	})
	return d, err
}

// SetNotifies records what Describe would have said of policy changes,
// for a host that knows the verifier without asking it.
func (c *Client) SetNotifies(notifies bool) { c.silent.Store(!notifies) }

// Configure sends the user's options.
func (c *Client) Configure(ctx context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	r := &request{Method: methodConfigure}
	if req != nil {
		r.Options = req.Options
	}
	var cr *verify.ConfigureResponse
	err := c.call(ctx, clocks{}, r, func(r *response) error {
		if r.Configured == nil {
			return fmt.Errorf("%w: configure answered no result", ErrGarbage)
		}
		cr = &verify.ConfigureResponse{NeedsChain: r.Configured.NeedsChain}
		return nil
	})
	return cr, err
}

// Verify asks the plugin to decide on a peer, all of it bounded by ctx.
func (c *Client) Verify(ctx context.Context, req *verify.Request) (*verify.Verdict, error) {
	return c.verify(ctx, req, clocks{})
}

// VerifyWithin is Verify with two clocks: the call waits for a connection
// while ctx allows and for wait at most (with wait 0 or less, only for
// one that is free; then ErrBusy), and once it holds one, the plugin has
// timeout, or what is left of ctx, to answer. A call queued behind other
// callers' slow but timely calls (commits waiting on a lock) is then not
// taken for a plugin that hung: only a call that had the whole timeout and
// got no answer ends with context.DeadlineExceeded while ctx is still
// alive.
func (c *Client) VerifyWithin(ctx context.Context, req *verify.Request, wait, timeout time.Duration) (*verify.Verdict, error) {
	return c.verify(ctx, req, clocks{wait: max(wait, 0), answer: max(timeout, 0), set: true})
}

// clocks bound a call beyond its context, when set: the wait for a
// connection, then the plugin's answer.
type clocks struct {
	wait, answer time.Duration
	set          bool
}

func (c *Client) verify(ctx context.Context, req *verify.Request, within clocks) (*verify.Verdict, error) {
	var v *verify.Verdict
	err := c.call(ctx, within, &request{Method: methodVerify, Peer: req}, func(r *response) error {
		if r.Verdict == nil {
			return fmt.Errorf("%w: verify answered no verdict", ErrGarbage)
		}
		var err error
		if v, err = r.Verdict.verdict(); err != nil {
			return fmt.Errorf("%w: %w", ErrGarbage, err)
		}
		return nil
	})
	return v, err
}

// Commit tells the plugin that a handshake it allowed with Commit set has
// succeeded.
func (c *Client) Commit(ctx context.Context, req *verify.Request) (*verify.CommitResponse, error) {
	if err := c.call(ctx, clocks{}, &request{Method: methodCommit, Peer: req}, nothing(methodCommit)); err != nil {
		return nil, err
	}
	return &verify.CommitResponse{}, nil
}

// nothing checks the answer to method, which has no result: any result
// is garbage, not a success.
func nothing(method string) func(*response) error {
	return func(r *response) error {
		if r.Description != nil || r.Configured != nil || r.Verdict != nil || r.PolicyChange != nil {
			return fmt.Errorf("%w: %s answered a result where it has none", ErrGarbage, method)
		}
		return nil
	}
}

// Shutdown asks the plugin to stop serving; it answers before it does.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.call(ctx, clocks{}, &request{Method: methodShutdown}, nil)
}

// WatchPolicy streams the plugin's policy changes on a connection of its
// own. The channel is closed when ctx ends or the connection breaks. When
// Describe said the verifier reports none, it returns
// verify.ErrNoPolicyWatch without opening a connection.
func (c *Client) WatchPolicy(ctx context.Context) (<-chan verify.PolicyChange, error) {
	if c.silent.Load() {
		return nil, verify.ErrNoPolicyWatch
	}
	cn, err := c.connect()
	if err != nil {
		return nil, err
	}
	if _, err := c.roundTrip(ctx, time.Time{}, cn, &request{Method: methodWatch}); err != nil {
		c.discard(cn)
		return nil, err
	}
	cn.SetDeadline(time.Time{})
	c.watchEnd.Store(nil)
	stop := context.AfterFunc(ctx, func() { c.discard(cn) })
	ch := make(chan verify.PolicyChange, 1)
	go func() {
		var why error
		defer close(ch)
		defer func() {
			if why != nil && ctx.Err() == nil {
				c.watchEnd.Store(&why)
			}
		}()
		defer c.discard(cn)
		defer stop()
		for {
			resp, err := read(cn, cn.sent)
			switch {
			case errors.Is(err, io.EOF):
				why = fmt.Errorf("%w: the plugin closed its policy watch", ErrTransport)
				return
			case err != nil:
				why = c.fail(ctx, false, methodWatch, err) // garbage as it is
				return
			case resp.PolicyChange == nil:
				why = fmt.Errorf("%w: an answer that is not a policy change on the policy watch", ErrGarbage)
				return
			}
			select {
			case ch <- verify.PolicyChange{Epoch: resp.PolicyChange.Epoch, Reason: verify.Truncate(resp.PolicyChange.Reason)}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// WatchEnded says why the last policy watch (WatchPolicy) ended, once
// its channel is closed: the plugin closed it or broke the protocol. It
// is nil while the watch runs, and when its context ended it.
func (c *Client) WatchEnded() error {
	if why := c.watchEnd.Load(); why != nil {
		return *why
	}
	return nil
}

// Close closes every connection and the channel; calls in progress and
// later calls fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.done)
	c.ch.Close()
	for cn := range c.open {
		cn.Close()
	}
	c.idle = nil
	return nil
}

// call makes one call on a pooled connection and gives the answer to
// result, if not nil, which takes what it needs or says why it is
// garbage. A connection whose call failed in any way but with the
// verifier's own error is closed. ctx bounds the call, and so do within's
// clocks when set (VerifyWithin).
func (c *Client) call(ctx context.Context, within clocks, req *request, result func(*response) error) error {
	if isClosed(c.done) {
		return errUnsent
	}
	if err := c.acquire(ctx, within, req.Method); err != nil {
		return err
	}
	defer func() { <-c.slots }()
	var answerBy time.Time // zero: ctx alone bounds the answer
	if within.set && within.answer > 0 {
		answerBy = time.Now().Add(within.answer)
	}
	cn, err := c.take()
	if err != nil {
		return err
	}
	resp, err := c.roundTrip(ctx, answerBy, cn, req)
	if err == nil && result != nil {
		err = result(resp)
	}
	if (err == nil || isRemote(err)) && req.Method != methodShutdown {
		c.put(cn)
	} else {
		c.discard(cn)
	}
	return err
}

// isRemote says err is the verifier's own (a *RemoteError), on the path
// of an error only: the variable errors.As needs is allocated.
func isRemote(err error) bool {
	var remote *RemoteError
	return errors.As(err, &remote)
}

// acquire takes a slot for a call, waiting while ctx allows, and for
// within.wait at most when it is set.
func (c *Client) acquire(ctx context.Context, within clocks, method string) error {
	select {
	case c.slots <- struct{}{}:
		return nil
	default:
	}
	var expired <-chan time.Time // nil, never ready, without a clock
	if within.set {
		t := time.NewTimer(within.wait)
		defer t.Stop()
		expired = t.C
	}
	select {
	case c.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("direct: %s: waiting for a connection: %w", method, ctx.Err())
	case <-expired:
		return fmt.Errorf("%w: %s: all %d in use by other calls for %s", ErrBusy, method, cap(c.slots), within.wait)
	case <-c.done:
		return errUnsent
	}
}

// take returns an idle connection, or a new one.
func (c *Client) take() (*conn, error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		cn := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return cn, nil
	}
	c.mu.Unlock()
	return c.connect()
}

// connect offers the plugin a new connection and counts it as open.
func (c *Client) connect() (*conn, error) {
	pc, err := offerPipes(c.ch)
	if err != nil {
		return nil, err
	}
	cn := &conn{pipeConn: pc, w: rawio.Quiet(pc.w), r: bufio.NewReader(rawio.QuietLinger(pc.r))}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cn.Close()
		return nil, errUnsent
	}
	c.open[cn] = true
	return cn, nil
}

func (c *Client) put(cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cn.Close()
		return
	}
	c.idle = append(c.idle, cn)
}

func (c *Client) discard(cn *conn) {
	c.mu.Lock()
	delete(c.open, cn)
	c.mu.Unlock()
	cn.Close()
}

// roundTrip sends req on cn and reads the answer, in the caller's
// goroutine, bounded by ctx and by answerBy when it is not zero: the
// connection's deadline is the earlier of the two, and a cancellation of
// ctx sets a past one to interrupt a blocked read or write. (A context
// derived with answerBy's deadline would do the same, for a timer and two
// allocations more on every call.)
func (c *Client) roundTrip(ctx context.Context, answerBy time.Time, cn *conn, req *request) (*response, error) {
	d, hasDeadline := ctx.Deadline()
	own := !answerBy.IsZero() && (!hasDeadline || answerBy.Before(d))
	if own {
		d, hasDeadline = answerBy, true
	}
	if hasDeadline {
		req.Timeout = time.Until(d)
	}
	if err := cn.SetDeadline(d); err != nil {
		return nil, c.fail(ctx, own, req.Method, err)
	}
	interrupted := func() bool { return false }
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { cn.SetDeadline(time.Unix(1, 0)) })
		interrupted = func() bool { return !stop() }
	}
	cn.sent++
	req.ID = cn.sent
	cn.buf = req.frame(cn.buf[:0])
	err := writeFrame(cn.w, cn.buf)
	if errors.Is(err, syscall.EPIPE) {
		// No reader had the pipe: the frame, whole or in part, reached
		// nobody, and a part would not have been decoded.
		err = fmt.Errorf("%w: %w", ErrNotDelivered, err)
	}
	if cap(cn.buf) > keptBuffer {
		cn.buf = nil
	}
	var resp *response
	if err == nil {
		resp, err = read(cn, req.ID)
	}
	if interrupted() && err == nil {
		err = ctx.Err() // the answer came, but the connection is spoilt
	}
	if err != nil {
		return nil, c.fail(ctx, own, req.Method, err)
	}
	if resp.Error != nil {
		return nil, &RemoteError{Message: verify.Truncate(resp.Error.Message), BadOption: resp.Error.BadOption}
	}
	return resp, nil
}

// read reads the answer to the request with id, which holds until the
// next read on cn. An answer to another request is garbage: a plugin
// that answered one twice would otherwise have its second answer, about
// an earlier peer, taken for the next call's, about another.
func read(cn *conn, id uint32) (*response, error) {
	got, body, err := readFrame(cn.r, cn.in)
	if err != nil {
		return nil, err
	}
	if cn.in = body; cap(body) > keptBuffer {
		cn.in = nil
	}
	if got != id {
		return nil, fmt.Errorf("%w: an answer to request %d where request %d was asked", ErrGarbage, got, id)
	}
	if err := cn.resp.unmarshal(body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGarbage, err)
	}
	return &cn.resp, nil
}

// fail says why a call on a connection failed: the caller's context ended
// or the call's own deadline passed (own: the connection's deadline was
// the call's, not ctx's), with context's error so that the caller can
// tell a timeout; the client was closed; the plugin answered garbage; or
// the connection broke.
func (c *Client) fail(ctx context.Context, own bool, method string, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		switch {
		case own && ctx.Err() == nil:
			return fmt.Errorf("direct: %s: %w (%v)", method, context.DeadlineExceeded, err)
		case !own && ctx.Done() != nil:
			<-ctx.Done() // the connection's deadline is ctx's: it ends now if it has not
		}
	}
	var over errOversize
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("direct: %s: %w (%v)", method, ctx.Err(), err)
	case errors.Is(err, ErrNotDelivered):
		// Even if the client was closed meanwhile, as when another call
		// found the plugin dead first: what matters is that this request
		// reached nobody.
		return fmt.Errorf("%w: %s: %w", ErrTransport, method, err)
	case isClosed(c.done):
		return fmt.Errorf("%w: %s: %w", ErrTransport, method, ErrClosed)
	case errors.As(err, &over):
		return fmt.Errorf("%w: %w", ErrGarbage, err)
	case errors.Is(err, ErrGarbage):
		return err
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: %s: connection closed before an answer", ErrTransport, method)
	}
	return fmt.Errorf("%w: %s: %w", ErrTransport, method, err)
}

// errUnsent is the error of a call on a closed client that sent nothing.
var errUnsent = fmt.Errorf("%w: %w (%w)", ErrTransport, ErrClosed, ErrNotDelivered)

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
