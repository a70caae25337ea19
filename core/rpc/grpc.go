package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync/atomic"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/printable"
	verifierv1 "github.com/tlspin/tlspin/proto/verifier/v1"
)

// GRPCPlugin is the go-plugin plugin.GRPCPlugin for verifiers. On the plugin
// side Impl is the verifier being served; on the host side it is nil.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl verify.Verifier
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the verifier service.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	verifierv1.RegisterVerifierServer(s, &server{impl: p.Impl})
	return nil
}

// GRPCClient returns a *Client.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClient(c), nil
}

// Client is a verify.Verifier that calls a verifier over gRPC.
type Client struct {
	c verifierv1.VerifierClient
	// commits is set once a verdict asked for a commit: the verifier
	// records in Commit, so an UNIMPLEMENTED Commit is no record made.
	commits atomic.Bool
	// watchEnd is why the last watch ended, for WatchEnded; nil while it
	// runs or when its context ended it.
	watchEnd atomic.Pointer[error]
}

var (
	_ verify.Verifier  = (*Client)(nil)
	_ verify.Committer = (*Client)(nil)
)

// NewClient wraps a gRPC connection to a verifier.
func NewClient(cc grpc.ClientConnInterface) *Client {
	return &Client{c: verifierv1.NewVerifierClient(cc)}
}

// Describe asks the plugin what it is.
func (c *Client) Describe(ctx context.Context) (*verify.Description, error) {
	ctx, rec := newCall(ctx)
	r, err := c.c.Describe(ctx, &verifierv1.DescribeRequest{})
	if err != nil {
		return nil, rec.classify(ctx, err)
	}
	d := descriptionFromProto(r)
	if d.Name == "" {
		return nil, fmt.Errorf("rpc: %w: Describe returned no name", ErrGarbage)
	}
	return d, nil
}

// Configure sends the user's options.
func (c *Client) Configure(ctx context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	preq, err := configureRequestToProto(req)
	if err != nil {
		return nil, err
	}
	ctx, rec := newCall(ctx)
	r, err := c.c.Configure(ctx, preq)
	if err != nil {
		return nil, rec.classify(ctx, err)
	}
	return &verify.ConfigureResponse{NeedsChain: r.GetNeedsChain()}, nil
}

// Verify asks the plugin to decide on a peer.
func (c *Client) Verify(ctx context.Context, req *verify.Request) (*verify.Verdict, error) {
	ctx, rec := newCall(ctx)
	r, err := c.c.Verify(ctx, requestToProto(req))
	if err != nil {
		return nil, rec.classify(ctx, err)
	}
	v, err := verdictFromProto(r)
	if err == nil && v.Commit {
		c.commits.Store(true)
	}
	return v, err
}

// ExpectCommit says that a verdict of the verifier, maybe from an earlier
// process of it, asked for a commit: an UNIMPLEMENTED Commit is then an
// error (see Commit).
func (c *Client) ExpectCommit() { c.commits.Store(true) }

// Commit tells the plugin that a handshake it allowed with Commit set
// has succeeded. A plugin that does not implement it has nothing to commit,
// unless one of its verdicts asked for a commit: its allow then held only
// on condition of a record it cannot make (an SDK verifier that answers
// commit=true without a commit method), and UNIMPLEMENTED is an error.
func (c *Client) Commit(ctx context.Context, req *verify.Request) (*verify.CommitResponse, error) {
	ctx, rec := newCall(ctx)
	_, err := c.c.Commit(ctx, &verifierv1.CommitRequest{Request: requestToProto(req)})
	if err == nil {
		return &verify.CommitResponse{}, nil
	}
	err = rec.classify(ctx, err)
	if remote := (*RemoteError)(nil); errors.As(err, &remote) && remote.Code == codes.Unimplemented {
		if c.commits.Load() {
			return nil, fmt.Errorf("rpc: %w: the verifier asked for a commit (commit=true) but does not implement Commit: %q", ErrGarbage, remote.Message)
		}
		return &verify.CommitResponse{}, nil
	}
	return nil, err
}

// WatchPolicy streams policy changes until ctx ends. It returns once the
// plugin has acknowledged the watch with the response headers, which
// core/rpc's server sends once it has subscribed to the verifier's
// changes: every change from then on is streamed. A plugin that does not
// acknowledge (one built with an older SDK) sends its headers with its
// first change, so WatchPolicy waits until then, or until ctx ends. A
// plugin that does not implement it (UNIMPLEMENTED) gets
// verify.ErrNoPolicyWatch; a watch that ends in any other way before it
// was acknowledged is an error.
func (c *Client) WatchPolicy(ctx context.Context) (<-chan verify.PolicyChange, error) {
	ctx, rec := newCall(ctx)
	st, err := c.c.WatchPolicy(ctx, &verifierv1.WatchPolicyRequest{})
	if err != nil {
		return nil, rec.classify(ctx, err)
	}
	// gRPC gives no headers, and no error, for a stream that ended
	// without them; Recv tells how it ended.
	if md, _ := st.Header(); md == nil {
		_, err := st.Recv()
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("the plugin ended its policy watch before it acknowledged it")
		}
		err = rec.classify(ctx, err)
		if re := (*RemoteError)(nil); errors.As(err, &re) && re.Code == codes.Unimplemented {
			return nil, fmt.Errorf("rpc: %w (WatchPolicy is UNIMPLEMENTED)", verify.ErrNoPolicyWatch)
		}
		return nil, err
	}
	c.watchEnd.Store(nil)
	ch := make(chan verify.PolicyChange, 1)
	go func() {
		var why error
		defer close(ch)
		defer func() {
			if why != nil && ctx.Err() == nil {
				c.watchEnd.Store(&why)
			}
		}()
		for {
			m, err := st.Recv()
			if err != nil {
				why = watchEnd(ctx, rec, err)
				return
			}
			select {
			case ch <- verify.PolicyChange{Epoch: m.GetEpoch(), Reason: verify.Truncate(m.GetReason())}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// WatchEnded says why the last policy watch (WatchPolicy) ended, once
// its channel is closed: the plugin ended it, with a status or without,
// or the connection broke. It is nil while the watch runs, and when its
// context ended it.
func (c *Client) WatchEnded() error {
	if why := c.watchEnd.Load(); why != nil {
		return *why
	}
	return nil
}

// watchEnd says why a watch's stream ended with err. A status the plugin
// gave is its text, for a log: escaped, so that it cannot forge the log's
// lines or drive a terminal.
func watchEnd(ctx context.Context, rec *call, err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: the plugin ended its policy watch", ErrTransport)
	}
	err = rec.classify(ctx, err)
	if re := (*RemoteError)(nil); errors.As(err, &re) {
		return fmt.Errorf("%w: the plugin ended its policy watch with %s: %s", ErrTransport, re.Code, printable.Escape(re.Message))
	}
	return err
}

var (
	// ErrGarbage means a plugin answered something that is not a valid answer.
	ErrGarbage = errors.New("rpc: malformed answer from verifier plugin")
	// ErrTransport means the plugin could not be reached or died mid-call:
	// the call ended without a status from the plugin.
	ErrTransport = errors.New("rpc: verifier plugin unreachable")
)

// RemoteError is an error the verifier itself returned: the plugin ended
// the call with a gRPC status of its own (see call.classify). It is a
// rejection, never a reason to restart the plugin. Message is truncated to
// verify.MaxTextLen.
type RemoteError struct {
	Code    codes.Code
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// Unwrap maps InvalidArgument to verify.ErrBadOption.
func (e *RemoteError) Unwrap() error {
	if e.Code == codes.InvalidArgument {
		return verify.ErrBadOption
	}
	return nil
}

// server adapts a verify.Verifier to the generated gRPC service.
type server struct {
	verifierv1.UnimplementedVerifierServer
	impl verify.Verifier
}

func (s *server) Describe(ctx context.Context, _ *verifierv1.DescribeRequest) (_ *verifierv1.DescribeResponse, err error) {
	defer recovered("Describe", &err)
	d, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return descriptionToProto(d), nil
}

func (s *server) Configure(ctx context.Context, req *verifierv1.ConfigureRequest) (_ *verifierv1.ConfigureResponse, err error) {
	defer recovered("Configure", &err)
	r, err := s.impl.Configure(ctx, configureRequestFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	if r == nil {
		r = &verify.ConfigureResponse{}
	}
	return &verifierv1.ConfigureResponse{NeedsChain: r.NeedsChain}, nil
}

func (s *server) Verify(ctx context.Context, req *verifierv1.VerifyRequest) (_ *verifierv1.VerifyResponse, err error) {
	defer recovered("Verify", &err)
	v, err := s.impl.Verify(ctx, requestFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	if v == nil {
		return nil, status.Error(codes.Unknown, "verifier returned no verdict")
	}
	if v.CacheFor < 0 {
		// The host would take it for garbage and restart the plugin on
		// every call; it is the verifier's mistake, a rejection.
		return nil, status.Error(codes.Unknown, fmt.Sprintf("verifier returned a negative cache time (%v)", v.CacheFor))
	}
	return verdictToProto(v), nil
}

func (s *server) Commit(ctx context.Context, req *verifierv1.CommitRequest) (_ *verifierv1.CommitResponse, err error) {
	defer recovered("Commit", &err)
	c, ok := s.impl.(verify.Committer)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "verifier has nothing to commit")
	}
	if _, err := c.Commit(ctx, requestFromProto(req.GetRequest())); err != nil {
		return nil, toStatus(err)
	}
	return &verifierv1.CommitResponse{}, nil
}

// WatchPolicy subscribes to the verifier's changes, then acknowledges the
// watch by sending the response headers (Client.WatchPolicy waits for
// them): a verifier announces a change only to the subscribers it has when
// the change happens, and the host takes the acknowledgement to mean that
// every change from then on reaches it. A verifier that is not a
// PolicyNotifier never changes: the stream stays open and silent.
func (s *server) WatchPolicy(_ *verifierv1.WatchPolicyRequest, st grpc.ServerStreamingServer[verifierv1.PolicyChange]) error {
	ctx := st.Context()
	var ch <-chan verify.PolicyChange // nil, never ready, for a verifier without changes
	if n, ok := s.impl.(verify.PolicyNotifier); ok {
		ch = n.PolicyChanges(ctx)
	}
	if err := st.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case c, ok := <-ch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				// The host restarts a plugin whose watch ended: tell the
				// author why, in its log.
				return status.Error(codes.FailedPrecondition, "the verifier's PolicyChanges channel was closed while the host watched (it must end with the context): its changes can no longer reach the host")
			}
			if err := st.Send(&verifierv1.PolicyChange{Epoch: c.Epoch, Reason: verify.Truncate(c.Reason)}); err != nil {
				return err
			}
		}
	}
}

// recovered, deferred by each call of the service, turns a panic of the
// verifier into the call's error, status Unknown: for Verify a rejection
// that names the panic, and the plugin keeps serving, as the Python SDK and
// the Node example do with an exception. Uncaught, the panic would end the
// plugin process, failing every call in flight and every peer until the
// host restarted it: one peer whose certificate trips a verifier's bug
// would keep the verifier down for all. The stack goes to stderr, which
// the host logs at debug level.
func recovered(method string, err *error) {
	p := recover()
	if p == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "verifier panicked in %s: %v\n%s", method, p, debug.Stack())
	*err = status.Error(codes.Unknown, verify.Truncate(fmt.Sprintf("verifier panicked: %v", p)))
}

// toStatus turns a verifier's error into the status the host receives: a
// bad option is InvalidArgument, an error carrying a gRPC status keeps its
// code, anything else is Unknown (DeadlineExceeded for a verifier's own
// timeout). Whatever the code, the host takes it as the verifier's answer
// (a rejection), not as a fault. The text is cut to verify.MaxTextLen, as
// the host would cut it: gRPC carries it in a header, and one over the
// host's header limit (an error quoting a peer's names, say) would reset
// the call, which the host takes for a broken plugin.
func toStatus(err error) error {
	msg := verify.Truncate(err.Error())
	if errors.Is(err, verify.ErrBadOption) {
		return status.Error(codes.InvalidArgument, msg)
	}
	if st, ok := status.FromError(err); ok {
		return status.Error(st.Code(), verify.Truncate(st.Message()))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, msg)
	}
	return status.Error(codes.Unknown, msg)
}
