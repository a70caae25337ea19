package rpc_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tlspin/tlspin/core/rpc"
)

// TestBrokerStreamIsRefused: a connection dialled with DialOptions never
// opens go-plugin's broker stream (core/host's TestPluginCannotFloodTheBroker
// says what a plugin could do with it); the plugin does not even see it
// asked for. Other streams, the policy watch among them, still open.
func TestBrokerStreamIsRefused(t *testing.T) {
	var opened atomic.Int32
	desc := grpc.ServiceDesc{
		ServiceName: "plugin.GRPCBroker",
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName:    "StartStream",
			ServerStreams: true,
			ClientStreams: true,
			Handler: func(any, grpc.ServerStream) error {
				opened.Add(1)
				return nil
			},
		}},
	}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	srv.RegisterService(&desc, struct{}{})
	if err := (&rpc.GRPCPlugin{Impl: &fake{}}).GRPCServer(nil, srv); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///test", append(rpc.DialOptions(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); srv.Stop() })
	_, err = conn.NewStream(t.Context(), &desc.Streams[0], "/plugin.GRPCBroker/StartStream")
	if status.Code(err) != codes.Unimplemented || opened.Load() != 0 {
		t.Fatalf("broker stream: err %v, opened %d times on the plugin's side; want Unimplemented, never opened", err, opened.Load())
	}
	if _, err := rpc.NewClient(conn).WatchPolicy(t.Context()); err != nil {
		t.Fatalf("the policy watch, another stream: %v", err)
	}
}
