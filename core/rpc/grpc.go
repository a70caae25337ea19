package rpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tlspin/tlspin/core/verify"
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
	r, err := c.c.Describe(ctx, &verifierv1.DescribeRequest{})
	if err != nil {
		return nil, fromStatus(err)
	}
	d := descriptionFromProto(r)
	if d.Name == "" {
		return nil, fmt.Errorf("rpc: %w: Describe returned no name", ErrGarbage)
	}
	return d, nil
}

// Configure sends the user's options.
func (c *Client) Configure(ctx context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	r, err := c.c.Configure(ctx, configureRequestToProto(req))
	if err != nil {
		return nil, fromStatus(err)
	}
	return &verify.ConfigureResponse{NeedsChain: r.GetNeedsChain()}, nil
}

// Verify asks the plugin to decide on a peer.
func (c *Client) Verify(ctx context.Context, req *verify.Request) (*verify.Verdict, error) {
	r, err := c.c.Verify(ctx, requestToProto(req))
	if err != nil {
		return nil, fromStatus(err)
	}
	return verdictFromProto(r)
}

// Commit tells the plugin that a handshake it allowed with Commit set
// has succeeded. A plugin that does not implement it has nothing to commit.
func (c *Client) Commit(ctx context.Context, req *verify.Request) (*verify.CommitResponse, error) {
	_, err := c.c.Commit(ctx, &verifierv1.CommitRequest{Request: requestToProto(req)})
	if status.Code(err) == codes.Unimplemented {
		return &verify.CommitResponse{}, nil
	}
	if err != nil {
		return nil, fromStatus(err)
	}
	return &verify.CommitResponse{}, nil
}

// WatchPolicy streams policy changes until ctx ends. A plugin that does
// not implement it yields a channel that is closed at once.
func (c *Client) WatchPolicy(ctx context.Context) (<-chan verify.PolicyChange, error) {
	st, err := c.c.WatchPolicy(ctx, &verifierv1.WatchPolicyRequest{})
	if err != nil {
		return nil, fromStatus(err)
	}
	ch := make(chan verify.PolicyChange, 1)
	go func() {
		defer close(ch)
		for {
			m, err := st.Recv()
			if err != nil {
				return
			}
			select {
			case ch <- verify.PolicyChange{Epoch: m.GetEpoch(), Reason: m.GetReason()}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

var (
	// ErrGarbage means a plugin answered something that is not a valid answer.
	ErrGarbage = errors.New("rpc: malformed answer from verifier plugin")
	// ErrTransport means the plugin could not be reached or died mid-call.
	ErrTransport = errors.New("rpc: verifier plugin unreachable")
)

// RemoteError is an error the verifier itself returned.
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

// fromStatus tells the verifier's own errors apart from transport faults,
// which the host answers by restarting the plugin.
func fromStatus(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%w: %v", ErrTransport, err)
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	case codes.Canceled:
		return fmt.Errorf("%w: %w", context.Canceled, err)
	case codes.Unavailable:
		return fmt.Errorf("%w: %s", ErrTransport, st.Message())
	case codes.Internal, codes.Unimplemented, codes.DataLoss:
		return fmt.Errorf("%w: %s: %s", ErrGarbage, st.Code(), st.Message())
	}
	return &RemoteError{Code: st.Code(), Message: st.Message()}
}

// server adapts a verify.Verifier to the generated gRPC service.
type server struct {
	verifierv1.UnimplementedVerifierServer
	impl verify.Verifier
}

func (s *server) Describe(ctx context.Context, _ *verifierv1.DescribeRequest) (*verifierv1.DescribeResponse, error) {
	d, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return descriptionToProto(d), nil
}

func (s *server) Configure(ctx context.Context, req *verifierv1.ConfigureRequest) (*verifierv1.ConfigureResponse, error) {
	r, err := s.impl.Configure(ctx, configureRequestFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	if r == nil {
		r = &verify.ConfigureResponse{}
	}
	return &verifierv1.ConfigureResponse{NeedsChain: r.NeedsChain}, nil
}

func (s *server) Verify(ctx context.Context, req *verifierv1.VerifyRequest) (*verifierv1.VerifyResponse, error) {
	v, err := s.impl.Verify(ctx, requestFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	if v == nil {
		return nil, status.Error(codes.Unknown, "verifier returned no verdict")
	}
	return verdictToProto(v), nil
}

func (s *server) Commit(ctx context.Context, req *verifierv1.CommitRequest) (*verifierv1.CommitResponse, error) {
	c, ok := s.impl.(verify.Committer)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "verifier has nothing to commit")
	}
	if _, err := c.Commit(ctx, requestFromProto(req.GetRequest())); err != nil {
		return nil, toStatus(err)
	}
	return &verifierv1.CommitResponse{}, nil
}

func (s *server) WatchPolicy(_ *verifierv1.WatchPolicyRequest, st grpc.ServerStreamingServer[verifierv1.PolicyChange]) error {
	n, ok := s.impl.(verify.PolicyNotifier)
	if !ok {
		<-st.Context().Done()
		return nil
	}
	ch := n.PolicyChanges(st.Context())
	for {
		select {
		case <-st.Context().Done():
			return nil
		case c, ok := <-ch:
			if !ok {
				return nil
			}
			if err := st.Send(&verifierv1.PolicyChange{Epoch: c.Epoch, Reason: c.Reason}); err != nil {
				return err
			}
		}
	}
}

func toStatus(err error) error {
	if errors.Is(err, verify.ErrBadOption) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}
