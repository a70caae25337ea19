// Package sdk is what a verifier plugin's main calls. Implement
// verify.Verifier, then:
//
//	func main() { sdk.Serve(myverifier.New()) }
//
// Serve speaks the go-plugin handshake on stdout, serves gRPC with AutoMTLS
// when the host asks for it, logs JSON to stderr (the host re-emits it under
// the verifier's name) and exits when the host goes away, killing its
// process group with it: children the verifier started do not outlive the
// host, even one killed with SIGKILL (see plugproc.WatchHost). A plugin must never
// write to stdout itself: stdout carries the handshake.
//
// The rest are helpers for writing Configure and Verify: ReadOptions checks
// and reads options (errors that name the option and quote the value), Leaf
// parses the peer's certificate, Rejectf makes a rejection. Package
// sdk/sdktest runs a verifier in-process over gRPC for unit tests.
//
// Serve speaks verifier protocol version rpc.ProtocolVersion; a host that
// speaks other versions only refuses the plugin with an error naming both.
// See docs/writing-a-verifier.md for the contract.
package sdk

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/tlspin/tlspin/core/plugproc"
	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/core/verify"
)

// Logger returns the logger a plugin should use: JSON on stderr, which the
// host parses and re-emits. Level follows $TLSPIN_LOG_LEVEL (default info).
func Logger(name string) hclog.Logger { return plugproc.Logger(name) }

// ErrNoLeaf is returned by Leaf for a request without a certificate.
var ErrNoLeaf = errors.New("sdk: peer sent no certificate")

// Leaf parses the peer's leaf certificate. An error is a rejection: return
// it from Verify, or turn it into a verdict that says why.
func Leaf(req *verify.Request) (*x509.Certificate, error) {
	der := req.Leaf()
	if der == nil {
		return nil, ErrNoLeaf
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sdk: peer leaf certificate (%d bytes): %w", len(der), err)
	}
	return c, nil
}

// Rejectf returns a rejection whose reason is formatted like fmt.Sprintf.
// Say what was received and how it could be trusted.
func Rejectf(format string, args ...any) *verify.Verdict {
	return &verify.Verdict{Reason: fmt.Sprintf(format, args...)}
}

// Serve serves v as a verifier plugin until the host disconnects. It does
// not return when started by a host; started by hand it prints go-plugin's
// explanation and exits 1.
func Serve(v verify.Verifier) {
	go plugproc.WatchHost()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  rpc.Handshake,
		VersionedPlugins: rpc.Plugins(&rpc.GRPCPlugin{Impl: v}),
		GRPCServer:       grpcServer,
		Logger:           Logger("plugin"),
	})
}

// grpcServer is go-plugin's default server, tuned for many tiny calls: a
// fixed pool of stream workers saves a goroutine start per call (gRPC
// shares its write buffers by default).
//
// Without AutoMTLS (a Linux host: no PLUGIN_CLIENT_CERT), only the host
// may connect: rpc.PluginCredentials checks the peer's process.
func grpcServer(opts []grpc.ServerOption) *grpc.Server {
	opts = append(opts, grpc.NumStreamWorkers(2))
	if os.Getenv("PLUGIN_CLIENT_CERT") == "" && rpc.PeerCredsSupported {
		opts = append(opts, grpc.Creds(rpc.PluginCredentials()))
	}
	return plugin.DefaultGRPCServer(opts)
}
