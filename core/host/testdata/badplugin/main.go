// Command badplugin is a verifier plugin that misbehaves on purpose, for the
// host's fault tests. It is built by the tests (testdata is not part of the
// module's packages). The first argument picks the misbehaviour:
//
//	allow          allow every peer (a healthy plugin, to be killed)
//	garbage        answer Verify with bytes that are not a VerifyResponse
//	               (allow=true followed by a truncated field)
//	negative       answer a verdict with a negative cache time
//	exit           exit in the middle of a Verify call
//	hang           never answer Verify
//	huge           allow with a reason of 5 MB (without the SDK, which
//	               would cut it)
//	deadline       fail Verify with an error wrapping context.DeadlineExceeded
//	               (a verifier whose own sub-request timed out)
//	status=CODE    fail Verify with gRPC status CODE (a number)
//	configure-exit exit (status 7) in the middle of a Configure call
//	configure-hang never answer Configure
//	describe-hang  never answer Describe
//	commit         allow every peer on condition of a commit (tofu's first
//	               use), without implementing Commit (UNIMPLEMENTED)
//	crashfile=PATH allow every peer, but refuse to start while PATH exists;
//	               every launch appends a line to PATH.launches
//	silent         print go-plugin's handshake line for a unix socket it
//	               listens on, accept connections and never serve them
//	               (no HTTP/2, no gRPC): the host's connect never completes
//	stdio-flood    allow every peer; if the host opens go-plugin's stdio
//	               stream, send stdioFlood empty messages on it (for no
//	               channel), then the line "[WARN] stdio flood sent" for
//	               its stderr
//	broker-flood   allow every peer; if the host opens go-plugin's broker
//	               stream, answer it with brokerFlood connection "knocks",
//	               each for another service id; Verify waits until they
//	               are sent and says how many were
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/core/verify"
	verifierv1 "github.com/tlspin/tlspin/proto/verifier/v1"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: badplugin MODE")
		os.Exit(2)
	}
	mode := os.Args[1]
	if path, ok := strings.CutPrefix(mode, "crashfile="); ok {
		if f, err := os.OpenFile(path+".launches", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			fmt.Fprintln(f, os.Getpid())
			f.Close()
		}
		if _, err := os.Stat(path); err == nil {
			fmt.Fprintln(os.Stderr, "badplugin: crash file present, dying")
			os.Exit(1)
		}
		mode = "allow"
	}
	if mode == "silent" {
		silent()
	}
	if mode == "broker-flood" {
		floodBroker()
	}
	if mode == "stdio-flood" {
		floodStdio()
	}
	var p plugin.Plugin
	switch mode {
	case "garbage":
		p = &garbagePlugin{}
	case "negative":
		p = &garbagePlugin{server: negativeServer{}}
	case "huge":
		p = &garbagePlugin{server: hugeServer{}}
	case "allow", "exit", "hang", "deadline", "configure-exit", "configure-hang", "describe-hang", "commit":
		p = &rpc.GRPCPlugin{Impl: &bad{mode: mode}}
	default:
		if c, ok := strings.CutPrefix(mode, "status="); ok {
			n, err := strconv.Atoi(c)
			if err == nil {
				p = &rpc.GRPCPlugin{Impl: &bad{mode: "status", code: codes.Code(n)}}
				break
			}
		}
		fmt.Fprintf(os.Stderr, "badplugin: unknown mode %q\n", mode)
		os.Exit(2)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  rpc.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{rpc.ProtocolVersion: {rpc.PluginName: p}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}

// bad is a verifier that misbehaves in Verify.
type bad struct {
	mode string
	code codes.Code
}

func (b *bad) Describe(context.Context) (*verify.Description, error) {
	if b.mode == "describe-hang" {
		select {}
	}
	return &verify.Description{Name: "bad-" + b.mode, Version: "0"}, nil
}

func (b *bad) Configure(context.Context, *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	switch b.mode {
	case "configure-exit":
		os.Exit(7)
	case "configure-hang":
		select {}
	}
	return &verify.ConfigureResponse{}, nil
}

func (b *bad) Verify(ctx context.Context, _ *verify.Request) (*verify.Verdict, error) {
	switch b.mode {
	case "exit":
		os.Exit(3)
	case "hang":
		select {}
	case "deadline":
		return nil, fmt.Errorf("badplugin: upstream lookup: %w", context.DeadlineExceeded)
	case "status":
		return nil, status.Errorf(b.code, "badplugin: returned status %s", b.code)
	case "commit":
		return &verify.Verdict{Allow: true, Reason: "first use", Commit: true}, nil
	}
	return &verify.Verdict{Allow: true, Reason: "allowed by badplugin", Matched: "anything"}, nil
}

// garbagePlugin serves the verifier service with a Verify that answers
// bytes no VerifyResponse can be parsed from or, with server, what server
// answers: what the Go SDK would refuse to send.
type garbagePlugin struct {
	plugin.NetRPCUnsupportedPlugin
	server verifierv1.VerifierServer
}

func (g garbagePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if g.server != nil {
		verifierv1.RegisterVerifierServer(s, g.server)
		return nil
	}
	desc := verifierv1.Verifier_ServiceDesc
	desc.Methods = append([]grpc.MethodDesc{}, desc.Methods...)
	for i := range desc.Methods {
		if desc.Methods[i].MethodName == "Verify" {
			desc.Methods[i].Handler = garbageVerify
		}
	}
	s.RegisterService(&desc, garbageServer{})
	return nil
}

func (garbagePlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("badplugin: no client side")
}

type garbageServer struct {
	verifierv1.UnimplementedVerifierServer
}

func (garbageServer) Describe(context.Context, *verifierv1.DescribeRequest) (*verifierv1.DescribeResponse, error) {
	return &verifierv1.DescribeResponse{Name: "bad-garbage", Version: "0"}, nil
}

func (garbageServer) Configure(context.Context, *verifierv1.ConfigureRequest) (*verifierv1.ConfigureResponse, error) {
	return &verifierv1.ConfigureResponse{}, nil
}

// negativeServer allows every peer, for -1 s.
type negativeServer struct{ garbageServer }

func (negativeServer) Verify(context.Context, *verifierv1.VerifyRequest) (*verifierv1.VerifyResponse, error) {
	return &verifierv1.VerifyResponse{Allow: true, Reason: "ok", CacheForMillis: -1000}, nil
}

// hugeServer allows every peer, with a reason of 5 MB.
type hugeServer struct{ garbageServer }

func (hugeServer) Verify(context.Context, *verifierv1.VerifyRequest) (*verifierv1.VerifyResponse, error) {
	return &verifierv1.VerifyResponse{Allow: true, Reason: strings.Repeat("A", 5<<20)}, nil
}

// garbageVerify answers allow=true, then a reason field whose length runs
// past the end of the message.
func garbageVerify(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	if err := dec(&verifierv1.VerifyRequest{}); err != nil {
		return nil, err
	}
	var raw []byte
	raw = protowire.AppendTag(raw, 1, protowire.VarintType)
	raw = protowire.AppendVarint(raw, 1)
	raw = protowire.AppendTag(raw, 2, protowire.BytesType)
	raw = protowire.AppendVarint(raw, 50)
	raw = append(raw, "short"...)
	m := &emptypb.Empty{}
	m.ProtoReflect().SetUnknown(raw)
	return m, nil
}

// silent listens on a unix socket in the directory the host gave, prints
// the handshake line naming it, then accepts connections and holds them
// without a byte of HTTP/2, until the host kills it.
func silent() {
	dir := os.Getenv("PLUGIN_UNIX_SOCKET_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	ln, err := net.Listen("unix", filepath.Join(dir, fmt.Sprintf("silent-%d", os.Getpid())))
	if err != nil {
		fmt.Fprintln(os.Stderr, "badplugin:", err)
		os.Exit(1)
	}
	fmt.Printf("%d|%d|unix|%s|grpc|\n", plugin.CoreProtocolVersion, rpc.ProtocolVersion, ln.Addr())
	var held []net.Conn
	for {
		c, err := ln.Accept()
		if err != nil {
			select {}
		}
		held = append(held, c) // never read, never written, never closed
	}
}

// brokerFlood is how many knocks broker-flood sends.
const brokerFlood = 200_000

// floodBroker serves a verifier that allows every peer, and answers the
// host's go-plugin broker stream (which tlspin never uses) with
// brokerFlood messages of a few bytes each: knocks for a multiplexed
// broker connection, each for a service id of its own, for which
// go-plugin's host side keeps an entry that nothing ever removes.
func floodBroker() {
	var (
		opened = make(chan struct{})
		sent   = make(chan int, 1)
	)
	intercept := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if info.FullMethod != "/plugin.GRPCBroker/StartStream" {
			return h(srv, ss)
		}
		close(opened)
		n := 0
		for ; n < brokerFlood; n++ {
			// plugin.ConnInfo{ServiceId: n+1, Knock: {Knock: true}}
			var knock, raw []byte
			knock = protowire.AppendTag(knock, 1, protowire.VarintType)
			knock = protowire.AppendVarint(knock, 1)
			raw = protowire.AppendTag(raw, 1, protowire.VarintType)
			raw = protowire.AppendVarint(raw, uint64(n+1))
			raw = protowire.AppendTag(raw, 4, protowire.BytesType)
			raw = protowire.AppendBytes(raw, knock)
			m := &emptypb.Empty{}
			m.ProtoReflect().SetUnknown(raw)
			if ss.SendMsg(m) != nil {
				break
			}
		}
		sent <- n
		<-ss.Context().Done()
		return nil
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  rpc.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{rpc.ProtocolVersion: {rpc.PluginName: &rpc.GRPCPlugin{Impl: brokerFlooder{opened, sent}}}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return plugin.DefaultGRPCServer(append(opts, grpc.ChainStreamInterceptor(intercept)))
		},
	})
	os.Exit(0)
}

// brokerFlooder allows every peer; its reason says whether the host had
// opened the broker stream, and how many knocks it was sent.
type brokerFlooder struct {
	opened <-chan struct{}
	sent   chan int
}

func (brokerFlooder) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{Name: "bad-broker-flood", Version: "0"}, nil
}

func (brokerFlooder) Configure(context.Context, *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	return &verify.ConfigureResponse{}, nil
}

func (b brokerFlooder) Verify(ctx context.Context, _ *verify.Request) (*verify.Verdict, error) {
	select {
	case <-b.opened:
	default:
		return &verify.Verdict{Allow: true, Reason: "broker stream not opened"}, nil
	}
	select {
	case n := <-b.sent:
		b.sent <- n
		return &verify.Verdict{Allow: true, Reason: fmt.Sprintf("broker stream opened: %d knocks sent", n)}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stdioFlood is how many messages stdio-flood sends.
const stdioFlood = 5000

// floodStdio serves a verifier that allows every peer, and answers the
// host's go-plugin stdio stream with stdioFlood empty messages, which
// name no channel (neither stdout nor stderr), then a line for stderr.
func floodStdio() {
	intercept := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if info.FullMethod != "/plugin.GRPCStdio/StreamStdio" {
			return h(srv, ss)
		}
		for range stdioFlood {
			if err := ss.SendMsg(&emptypb.Empty{}); err != nil {
				return err
			}
		}
		// plugin.StdioData{Channel: STDERR, Data: ...}
		var raw []byte
		raw = protowire.AppendTag(raw, 1, protowire.VarintType)
		raw = protowire.AppendVarint(raw, 2)
		raw = protowire.AppendTag(raw, 2, protowire.BytesType)
		raw = protowire.AppendBytes(raw, []byte("[WARN] stdio flood sent\n"))
		m := &emptypb.Empty{}
		m.ProtoReflect().SetUnknown(raw)
		if err := ss.SendMsg(m); err != nil {
			return err
		}
		<-ss.Context().Done()
		return nil
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  rpc.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{rpc.ProtocolVersion: {rpc.PluginName: &rpc.GRPCPlugin{Impl: &bad{mode: "stdio-flood"}}}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return plugin.DefaultGRPCServer(append(opts, grpc.ChainStreamInterceptor(intercept)))
		},
	})
	os.Exit(0)
}
