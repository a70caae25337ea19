// Command probe is a verifier plugin for the host's discovery, integrity
// and environment tests. It is built by the tests (testdata is not part of
// the module's packages). The first argument picks what it does:
//
//	env      serve a verifier that allows every peer and reports the
//	         plugin's whole environment as its Describe summary (NUL-separated)
//	v2       serve the verifier under protocol version 2 only, which this
//	         tlspin does not speak
//	stdout   write a line to stdout, then serve (a plugin that prints)
//	stdin    read stdin to its end, then serve; Describe's summary is
//	         "stdin:" and what was read
//	child    start a child process (sleep) in the background, then serve;
//	         Describe's summary is the child's pid
//	escape   as child, but the child leaves the plugin's process group
//	         (a session of its own) and keeps the plugin's stderr open
//	log      write a plain line on stderr, then serve; Configure logs a
//	         line through the SDK's logger and writes another plain line
//	lax      serve a verifier that declares options (pin, required; san,
//	         repeatable) but accepts any options in Configure
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
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
	case "stdin":
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			b = []byte("error: " + err.Error())
		}
		sdk.Serve(probe{summary: "stdin:" + string(b)})
	case "child", "escape":
		c := exec.Command("sleep", "300")
		if os.Args[1] == "escape" {
			c.Stderr = os.Stderr
			c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		}
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			os.Exit(1)
		}
		sdk.Serve(probe{summary: strconv.Itoa(c.Process.Pid)})
	case "log":
		fmt.Fprintln(os.Stderr, "[WARN] a plain line on stderr")
		sdk.Serve(probe{log: sdk.Logger("probe")})
	case "lax":
		sdk.Serve(probe{options: []verify.Option{{Name: "pin", Required: true}, {Name: "san", Repeated: true}}})
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

// probe allows every peer and describes itself with its summary, by
// default its environment. It accepts any options.
type probe struct {
	summary string
	options []verify.Option
	log     hclog.Logger
}

func (p probe) Describe(context.Context) (*verify.Description, error) {
	s := p.summary
	if s == "" {
		env := os.Environ()
		sort.Strings(env)
		s = strings.Join(env, "\x00")
	}
	return &verify.Description{Name: "probe", Version: "0", Summary: s, Options: p.options}, nil
}

func (p probe) Configure(_ context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	if p.log != nil {
		p.log.Info("configured", "options", len(req.Options))
		fmt.Fprintln(os.Stderr, "[WARN] a plain line after the start")
	}
	return &verify.ConfigureResponse{}, nil
}

func (probe) Verify(context.Context, *verify.Request) (*verify.Verdict, error) {
	return &verify.Verdict{Allow: true, Reason: "probe allows everything", Matched: "probe"}, nil
}
