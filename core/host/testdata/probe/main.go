// Command probe is a verifier plugin for the host's discovery, integrity
// and environment tests. It is built by the tests (testdata is not part of
// the module's packages). The first argument picks what it does:
//
//	env      serve a verifier that allows every peer and reports the
//	         plugin's whole environment as its Describe summary (NUL-separated)
//	v2       serve the verifier under protocol version 2 only, which this
//	         tlspin does not speak
//	stdout   write a line to stdout, then serve (a plugin that prints)
package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/go-plugin"

	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/core/sdk"
	"github.com/tlspin/tlspin/core/verify"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe env|v2|stdout")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "env":
		sdk.Serve(probe{})
	case "stdout":
		fmt.Println("hello from a chatty plugin")
		sdk.Serve(probe{})
	case "v2":
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  rpc.Handshake,
			VersionedPlugins: map[int]plugin.PluginSet{2: {rpc.PluginName: &rpc.GRPCPlugin{Impl: probe{}}}},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
	default:
		fmt.Fprintf(os.Stderr, "probe: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}

// probe allows every peer and describes itself with its environment.
type probe struct{}

func (probe) Describe(context.Context) (*verify.Description, error) {
	env := os.Environ()
	sort.Strings(env)
	return &verify.Description{Name: "probe", Version: "0", Summary: strings.Join(env, "\x00")}, nil
}

func (probe) Configure(context.Context, *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	return &verify.ConfigureResponse{}, nil
}

func (probe) Verify(context.Context, *verify.Request) (*verify.Verdict, error) {
	return &verify.Verdict{Allow: true, Reason: "probe allows everything", Matched: "probe"}, nil
}
