package direct

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/deadline"
	"github.com/tlspin/tlspin/internal/rawio"
)

// Serve answers calls to v on the connections the host offers on the
// channel ch (NewChannel) until ctx ends, the host closes its end of ch,
// or a shutdown request is answered; then it closes ch and every
// connection, waits for their calls to end and returns (nil unless ch
// failed). An offer of anything but a pipe pair is refused and logged; a
// connection that sends anything but a well-formed request is closed; the
// others go on.
//
// A verifier's panic in a call is answered as the verifier's error (see
// call); one elsewhere (a goroutine of its own) ends the plugin, and the
// host restarts it.
func Serve(ctx context.Context, ch *net.UnixConn, v verify.Verifier, log hclog.Logger) error {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	var wg sync.WaitGroup
	defer wg.Wait() // after stop has closed every connection
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	s := &server{v: v, log: log, stop: stop, conns: map[io.Closer]bool{}}
	context.AfterFunc(ctx, func() {
		ch.Close()
		s.closeAll()
	})
	for {
		pc, err := takePipes(ch)
		switch {
		case err == nil:
		case ctx.Err() != nil, errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, errBadOffer):
			log.Warn("refused a connection", "error", err)
			continue
		default:
			return fmt.Errorf("direct: channel: %w", err)
		}
		if !s.track(pc) {
			pc.Close()
			return nil
		}
		wg.Go(func() {
			defer s.untrack(pc)
			s.handle(ctx, pc)
		})
	}
}

// server is one Serve's state: its verifier and its open connections.
type server struct {
	v    verify.Verifier
	log  hclog.Logger
	stop context.CancelFunc // ends Serve

	mu     sync.Mutex
	conns  map[io.Closer]bool // the connections' pipes
	closed bool
}

func (s *server) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = true
	return true
}

func (s *server) untrack(c io.Closer) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

func (s *server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
}

// handle answers the requests of one connection, one at a time, until it
// closes or sends something that is not a request. What an answer is
// made in (its frame, its verdict, the values of the call's context) is
// made once per connection and reused: they cost the plugin four
// allocations a call. What the verifier is given (the request, its
// certificates, the context) is its own, never reused.
func (s *server) handle(ctx context.Context, conn *pipeConn) {
	r := bufio.NewReader(rawio.Quiet(conn.r))
	w := rawio.Quiet(conn.w)
	var (
		values = context.WithoutCancel(ctx) // for the calls' contexts
		resp   response
		vd     verdict // resp's, for a Verify
		out    []byte  // the last answer's frame
	)
	for {
		id, body, err := readFrame(r, nil)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				s.log.Warn("closing a connection: bad frame", "error", err)
			}
			return
		}
		var req request
		if err := req.unmarshal(body); err != nil {
			s.log.Warn("closing a connection: bad request", "error", err)
			return
		}
		if req.Method == methodWatch {
			s.watch(ctx, conn, r, id)
			return
		}
		if !s.call(ctx, values, &req, &resp, &vd) {
			s.log.Warn("closing a connection: unknown method", "method", req.Method)
			return
		}
		resp.ID = id
		out = resp.frame(out[:0])
		if err := writeFrame(w, out); err != nil {
			return
		}
		if cap(out) > keptBuffer {
			out = nil
		}
		if req.Method == methodShutdown {
			s.stop()
			return
		}
	}
}

// call asks the verifier what req asks, within req's timeout, and puts
// the answer in resp (a Verify's verdict in vd); false for an unknown
// method. Like core/rpc's server, a verifier's error goes back as the
// verifier's answer, with BadOption set for verify.ErrBadOption, and so
// does a panic of the verifier (for Verify a rejection that names it):
// uncaught, it would end tlspin-builtins, failing every call in flight,
// and one peer whose certificate trips a verifier's bug would keep the
// verifier down for all while the host restarted it. values is
// context.WithoutCancel(ctx).
func (s *server) call(ctx, values context.Context, req *request, resp *response, vd *verdict) (known bool) {
	*resp = response{}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("verifier panicked", "method", req.Method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			*resp, known = response{Error: &remoteError{Message: verify.Truncate(fmt.Sprintf("verifier panicked: %v", p))}}, true
		}
	}()
	if req.Timeout > 0 {
		// A timer starts only if the verifier waits on ctx; the built-ins
		// never do in Verify (deadline.Lazy says what one cost per call).
		lazy := deadline.NewLazy(ctx, values, time.Now().Add(req.Timeout))
		defer lazy.Cancel()
		ctx = lazy
	}
	var err error
	switch req.Method {
	case methodDescribe:
		var d *verify.Description
		if d, err = s.v.Describe(ctx); err == nil && d == nil {
			err = errors.New("verifier returned no description")
		} else if err == nil {
			resp.Description = toDescription(d)
			_, resp.Description.Notifies = s.v.(verify.PolicyNotifier)
		}
	case methodConfigure:
		var c *verify.ConfigureResponse
		if c, err = s.v.Configure(ctx, &verify.ConfigureRequest{Options: verify.Options(req.Options)}); err == nil {
			resp.Configured = &configured{NeedsChain: c != nil && c.NeedsChain}
		}
	case methodVerify:
		var v *verify.Verdict
		if v, err = s.v.Verify(ctx, req.peer()); err == nil && v == nil {
			err = errors.New("verifier returned no verdict")
		} else if err == nil {
			// Texts may quote the peer at any length: cut as the host
			// would, they fit in a frame (verify.Truncate is free for
			// the short ones).
			*vd = verdict{Allow: v.Allow, Reason: verify.Truncate(v.Reason), Matched: verify.Truncate(v.Matched), CacheFor: v.CacheFor, Commit: v.Commit}
			resp.Verdict = vd
		}
	case methodCommit:
		// A verifier that is not a Committer has nothing to commit: that
		// is a success, as core/rpc's client takes Unimplemented.
		if c, ok := s.v.(verify.Committer); ok {
			_, err = c.Commit(ctx, req.peer())
		}
	case methodShutdown:
	default:
		return false
	}
	if err != nil {
		*resp = response{Error: &remoteError{Message: verify.Truncate(err.Error()), BadOption: errors.Is(err, verify.ErrBadOption)}}
	}
	return true
}

// watch answers a watch request, then sends a frame per policy change
// until the connection or Serve ends. It subscribes to the verifier's
// changes before it answers: the host takes the answer to mean that every
// change from then on reaches it, and a verifier announces a change only to
// the subscribers it has when the change happens. A verifier that is not a
// PolicyNotifier never changes: the connection stays open and silent. The
// host sends nothing more on a watch connection: anything it sends ends it.
// Every frame carries id, the watch request's.
func (s *server) watch(ctx context.Context, conn *pipeConn, r *bufio.Reader, id uint32) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ch <-chan verify.PolicyChange // nil, never ready, for a verifier without changes
	if n, ok := s.v.(verify.PolicyNotifier); ok {
		ch = n.PolicyChanges(ctx)
	}
	if err := writeFrame(conn.w, (&response{ID: id}).frame(nil)); err != nil {
		return
	}
	go func() {
		r.ReadByte() // returns when the connection closes, here or there
		cancel()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case c, ok := <-ch:
			if !ok {
				return
			}
			if err := writeFrame(conn.w, (&response{ID: id, PolicyChange: &policyChange{Epoch: c.Epoch, Reason: verify.Truncate(c.Reason)}}).frame(nil)); err != nil {
				return
			}
		}
	}
}
