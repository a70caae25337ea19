package rpc

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/tlspin/tlspin/core/verify"
)

// MaxMessageSize caps every message the host accepts from a plugin. A
// verdict is a few hundred bytes; a larger answer is garbage, refused by
// gRPC before it is held in memory (go-plugin's own limit is 2 GiB).
const MaxMessageSize = 1 << 20

// maxHeaderListSize caps the headers and trailers of a plugin's answer,
// which carry the text of an error it returns.
const maxHeaderListSize = 64 << 10

// DialOptions are the options the host's connection to a plugin needs
// (go-plugin ClientConfig.GRPCDialOptions): the message caps, the
// per-call record that tells a plugin's own error from a broken transport,
// and the refusal of go-plugin's broker stream (refuseBroker). A Client on
// a connection dialled without them reports every failed call as
// ErrTransport.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize)),
		grpc.WithMaxHeaderListSize(maxHeaderListSize),
		grpc.WithStatsHandler(callStats{}),
		grpc.WithChainStreamInterceptor(refuseBroker),
	}
}

// brokerStream is the method of go-plugin's broker stream, which
// go-plugin's client opens to every gRPC plugin it starts.
const brokerStream = "/plugin.GRPCBroker/StartStream"

// refuseBroker fails the broker stream (brokerStream) before it reaches
// the plugin. The broker lets a plugin and its host open more connections
// to each other; verifiers need none. Opened, it let a plugin grow the
// host's memory without bound: go-plugin's host side keeps an entry for
// every service id a plugin "knocks" on, and never removes it (a knock of
// a few bytes held some 450 bytes of the host's), and holds a goroutine
// for 5 s for every other message. go-plugin ignores the stream's error.
func refuseBroker(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if method == brokerStream {
		return nil, status.Errorf(codes.Unimplemented, "rpc: %s refused: verifier plugins get no broker", method)
	}
	return streamer(ctx, desc, cc, method, opts...)
}

// call records what the plugin's side of one RPC did, as gRPC's transport
// saw it. Only the transport writes it: nothing the plugin says (a status
// code, a message, metadata) can set these flags, only what it does.
type call struct {
	tagged   atomic.Bool // the connection has the stats handler
	headers  atomic.Bool // the plugin sent response headers (an answer follows)
	trailers atomic.Bool // the plugin ended the call with a status of its own
}

type callKey struct{}

func newCall(ctx context.Context) (context.Context, *call) {
	c := &call{}
	return context.WithValue(ctx, callKey{}, c), c
}

// callStats is the gRPC stats handler of DialOptions: it fills the call
// record of each RPC made through a Client.
type callStats struct{}

func (callStats) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	if c, ok := ctx.Value(callKey{}).(*call); ok {
		c.tagged.Store(true)
	}
	return ctx
}

func (callStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	c, ok := ctx.Value(callKey{}).(*call)
	if !ok || !s.IsClient() {
		return
	}
	switch s.(type) {
	case *stats.InHeader:
		c.headers.Store(true)
	case *stats.InTrailer:
		c.trailers.Store(true)
	}
}

func (callStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (callStats) HandleConn(context.Context, stats.ConnStats)                       {}

// classify says who ended a failed call, from what happened rather than
// from what the plugin claims:
//
//   - ctx ended: the host's own deadline or cancellation (ctx's error).
//   - the plugin sent an answer (headers) that gRPC refused before decoding
//     it, too large or not a valid message (Internal, ResourceExhausted):
//     ErrGarbage.
//   - the plugin ended the call with a status of its own (trailers):
//     a *RemoteError, whatever its code. The verifier is working and said
//     no; the host must not restart it.
//   - anything else (connection refused or broken, plugin died mid-call):
//     ErrTransport.
//
// A plugin cannot turn one into another by what it writes in a status: it
// could only do so by actually crashing, hanging or sending garbage, and
// every case rejects the peer.
func (c *call) classify(ctx context.Context, err error) error {
	st := status.Convert(err)
	msg := verify.Truncate(st.Message())
	done := ended(ctx)
	switch {
	case done != nil:
		return fmt.Errorf("rpc: %w (%s)", done, msg)
	case !c.tagged.Load():
		return fmt.Errorf("%w: %s: %s (connection not dialled with rpc.DialOptions: cannot tell the verifier's errors from transport faults)", ErrTransport, st.Code(), msg)
	case c.headers.Load() && (st.Code() == codes.Internal || st.Code() == codes.ResourceExhausted):
		return fmt.Errorf("%w: %s", ErrGarbage, msg)
	case c.trailers.Load():
		return &RemoteError{Code: st.Code(), Message: msg}
	}
	return fmt.Errorf("%w: %s: %s", ErrTransport, st.Code(), msg)
}

// ended is ctx's error, or DeadlineExceeded once its deadline has passed
// even if the timer that ends ctx has not run yet. The plugin's copy of the
// deadline ends no sooner than the host's, but on a busy host its timer
// can run first, and a plugin's "deadline exceeded" is the host's timeout,
// not the verifier's answer.
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}
