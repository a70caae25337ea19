// Command plugins is a test verifier plugin that breaks one rule of the
// host↔plugin contract on purpose, chosen by the name it is built under
// (tlspin-verifier-MODE):
//
//	good         breaks nothing: it must pass every item
//	stdout       writes to its real stdout after the handshake
//	gostdout     writes to os.Stdout after the handshake (go-plugin relays it)
//	wrongname    describes itself under another name
//	eqname       declares an option whose name holds "="
//	lax          accepts any option, known or not
//	crashgarbage exits when the leaf does not parse
//	undecided    answers every Verify with an error, never a verdict
//	hang         never answers Verify
//	slowexit     takes 3 s to exit after Shutdown
//	opendir      serves its socket from a directory other users can enter
//	abstract     serves on an abstract socket, which has no directory at all
//	otherpgrp    has its socket served by a process outside its group
//
// It allows a peer when configured want=allow, and rejects it with a
// reason when want=reject.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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
	case "opendir", "abstract", "otherpgrp":
		if err := serveByHand(v); err != nil {
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
	d := &verify.Description{Name: name, Version: "1", Summary: "breaks one rule on purpose (tests)", Options: []verify.Option{
		{Name: "want", Description: "allow or reject", Required: true},
	}}
	if p.mode == "eqname" {
		d.Options = append(d.Options, verify.Option{Name: "max=days", Description: "what a user cannot give"})
	}
	return d, nil
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
	switch p.mode {
	case "undecided":
		return nil, errors.New("the pin database is unreachable")
	case "hang":
		select {} // a deadlock in the verifier
	}
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

// serveByHand does go-plugin's part by hand, with its socket in a
// directory of mode 0755, made in the host's socket directory so that the
// host removes it with its own after killing the plugin, or (abstract) on
// a Linux abstract socket, which any local user can connect to.
func serveByHand(v *plugin) error {
	addr := fmt.Sprintf("@tlspin-test-abstract-%d", os.Getpid())
	if v.mode == "opendir" {
		dir, err := os.MkdirTemp(os.Getenv("PLUGIN_UNIX_SOCKET_DIR"), "opendir")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
		addr = filepath.Join(dir, "plugin.sock")
	}
	if v.mode == "otherpgrp" {
		if sock := os.Getenv("TLSPIN_TEST_SERVE"); sock != "" {
			addr = sock // the child, in a process group of its own
		} else {
			return serveFromOtherGroup()
		}
	}
	ln, err := net.Listen("unix", addr)
	if err != nil {
		return err
	}
	if v.mode == "otherpgrp" {
		os.Stdout.WriteString("ready\n")
		os.Stdout.Close()
		return serveGRPC(v, ln)
	}
	fmt.Printf("1|%d|unix|%s|grpc|\n", rpc.ProtocolVersion, ln.Addr())
	return serveGRPC(v, ln)
}

// serveFromOtherGroup starts this program again in a process group of its
// own to serve the socket, in the host's private directory, and hands the
// host that socket as its own.
func serveFromOtherGroup() error {
	sock := filepath.Join(os.Getenv("PLUGIN_UNIX_SOCKET_DIR"), "other.sock")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "TLSPIN_TEST_SERVE="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		cmd.Process.Kill()
		return fmt.Errorf("the serving child: %w", err)
	}
	fmt.Printf("1|%d|unix|%s|grpc|\n", rpc.ProtocolVersion, sock)
	return cmd.Wait()
}

func serveGRPC(v *plugin, ln net.Listener) error {
	s := grpc.NewServer()
	if err := (&rpc.GRPCPlugin{Impl: v}).GRPCServer(nil, s); err != nil {
		return err
	}
	return s.Serve(ln)
}
