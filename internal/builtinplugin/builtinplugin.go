// Package builtinplugin is cmd/tlspin-builtins: the built-in verifiers
// (md5pin, sha256pin, spkipin, allowlist, tofu, ca) served over the direct
// protocol (core/direct) instead of go-plugin's gRPC.
//
// Why a second binary: a plugin process pays, at every launch, for the
// initialisation of every package its binary links. The tlspin binary links
// gRPC, protobuf, go-plugin, cobra and prometheus and takes 25–30 ms from
// exec to its handshake line on a 2-core machine; this one links the
// verifiers, the standard library and go-hclog and takes about 8 ms,
// built static (docs/performance.md). tlspin runs it only when it sits
// next to the tlspin binary and comes from the same build
// (internal/launch); otherwise tlspin re-executes itself as before.
package builtinplugin

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/tlspin/tlspin/core/direct"
	"github.com/tlspin/tlspin/core/peercred"
	"github.com/tlspin/tlspin/core/plugproc"
	"github.com/tlspin/tlspin/verifiers/builtin"
)

// Name is the executable's name, next to the tlspin binary.
const Name = "tlspin-builtins"

// Main serves the built-in verifier named by args[0] until the host asks
// it to stop or goes away, and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if !plugproc.StartedByHost() {
		fmt.Fprintf(stderr, "%s serves tlspin's built-in verifiers to tlspin, which starts it; it is not run by hand.\nUse `tlspin verifiers` to see them.\n", Name)
		return 1
	}
	if len(args) != 1 {
		fmt.Fprintf(stderr, "%s: want one verifier name, got %q\n", Name, args)
		return 2
	}
	name := args[0]
	log := plugproc.Logger(name)
	v, err := builtin.New(log).Lookup(name)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", Name, err)
		return 2
	}
	ch, fd, err := direct.PluginChannel(os.Getenv(direct.EnvChannel))
	if err == nil {
		err = admitHost(ch)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", Name, err)
		return 1
	}
	go plugproc.WatchParent()
	if _, err := io.WriteString(stdout, direct.HandshakeLine(fd)); err != nil {
		return 1
	}
	if err := direct.Serve(context.Background(), ch, v, log); err != nil {
		log.Error("serving stopped", "error", err)
		return 1
	}
	return 0
}

// admitHost serves only the host that started this process: the kernel
// says who made the socket pair the channel is one end of.
func admitHost(c net.Conn) error {
	cred, err := peercred.Of(c)
	if err != nil {
		return err
	}
	return peercred.CheckPlugin(cred)
}
