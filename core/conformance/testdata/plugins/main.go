// Command plugins is a test verifier plugin that breaks one rule of the
// host↔plugin contract on purpose, chosen by the name it is built under
// (tlspin-verifier-MODE):
//
//	good         breaks nothing: it must pass every item
//	stdout       writes to its real stdout after the handshake
//	gostdout     writes to os.Stdout after the handshake (go-plugin relays it)
//	wrongname    describes itself under another name
//	lax          accepts any option, known or not
//	crashgarbage exits when the leaf does not parse
//	slowexit     takes 3 s to exit after Shutdown
//	opendir      serves its socket from a directory other users can enter
//
// It allows a peer when configured want=allow, and rejects it with a
// reason when want=reject.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/core/sdk"
	"github.com/tlspin/tlspin/core/verify"
)

// realStdout is the stdout the host reads; go-plugin points os.Stdout
// elsewhere once it has printed the handshake.
var realStdout = os.Stdout

func main() {
	mode := strings.TrimPrefix(filepath.Base(os.Args[0]), "tlspin-verifier-")
	v := &plugin{mode: mode}
	switch mode {
	case "opendir":
		if err := serveOpenDir(v); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "slowexit":
		sdk.Serve(v)
		time.Sleep(3 * time.Second)
	default:
		sdk.Serve(v)
	}
}

type plugin struct {
	mode string
	want string
}

func (p *plugin) Describe(context.Context) (*verify.Description, error) {
	name := p.mode
	if p.mode == "wrongname" {
		name = "somethingelse"
	}
	return &verify.Description{Name: name, Version: "1", Summary: "breaks one rule on purpose (tests)", Options: []verify.Option{
		{Name: "want", Description: "allow or reject", Required: true},
	}}, nil
}

func (p *plugin) Configure(ctx context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	switch p.mode {
	case "stdout":
		fmt.Fprintln(realStdout, "configuring, says the plugin on stdout")
	case "gostdout":
		fmt.Println("configuring, says the Go plugin")
	}
	if p.mode == "lax" {
		p.want = "allow"
		return &verify.ConfigureResponse{}, nil
	}
	o := sdk.ReadOptions(ctx, p, req)
	o.Check("want", func(s string) error {
		if s != "allow" && s != "reject" {
			return errors.New("want allow or reject")
		}
		return nil
	})
	if o.Err() != nil {
		return nil, o.Err()
	}
	p.want = o.String("want", "")
	return &verify.ConfigureResponse{}, nil
}

func (p *plugin) Verify(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
	leaf, err := sdk.Leaf(req)
	if err != nil {
		if p.mode == "crashgarbage" && req.Leaf() != nil {
			os.Exit(3)
		}
		return nil, err
	}
	if p.want == "allow" {
		return &verify.Verdict{Allow: true, Reason: "configured to allow", Matched: "want=allow"}, nil
	}
	return sdk.Rejectf("configured to reject %q", leaf.Subject.String()), nil
}

// serveOpenDir does go-plugin's part by hand, with its socket in a
// directory of mode 0755, made in the host's socket directory so that the
// host removes it with its own after killing the plugin.
func serveOpenDir(v verify.Verifier) error {
	dir, err := os.MkdirTemp(os.Getenv("PLUGIN_UNIX_SOCKET_DIR"), "opendir")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "plugin.sock"))
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	if err := (&rpc.GRPCPlugin{Impl: v}).GRPCServer(nil, s); err != nil {
		return err
	}
	fmt.Printf("1|%d|unix|%s|grpc|\n", rpc.ProtocolVersion, ln.Addr())
	return s.Serve(ln)
}
