package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/server"
	"github.com/tlspin/tlspin/internal/syncbuf"
)

// demoMessage is the recipe's message.
const demoMessage = "CHUPA ESSA MANGA, WIRESHARK!1!!"

func (a *app) demoCommand() *cobra.Command {
	keep := false
	c := &cobra.Command{
		Use:   "demo",
		Short: "play the whole recipe end to end on loopback",
		Long: `Play the recipe tlspin starts from, in a temporary directory on loopback:
make a self-signed certificate (key and certificate in one file), take its
MD5 fingerprint, run a TLS server that prints what it receives, send a
message pinned to the right fingerprint (verified by the md5pin plugin in
its own process), then send with a wrong pin and see it refused with
nothing sent. Each step shows the tlspin command that does the same.
Exits non-zero if any step does not behave as it should.`,
		Example: `  tlspin demo
  tlspin demo --keep              # then look at the files it made`,
		Args: noArgs("it plays the recipe on its own"),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runDemo(cmd, keep) },
	}
	c.Flags().BoolVar(&keep, "keep", false, "keep the temporary directory (its path is printed)")
	return c
}

func (a *app) runDemo(cmd *cobra.Command, keep bool) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	dir, err := os.MkdirTemp("", "tlspin-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if keep {
		fmt.Fprintf(out, "working in %s (kept)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	certFile := filepath.Join(dir, "cert.pem")
	step := func(n int, title, command string) {
		fmt.Fprintf(out, "\n== %d. %s\n$ %s\n", n, title, command)
	}
	// sub runs a tlspin subcommand in process, through the real CLI path.
	sub := func(stdout io.Writer, args ...string) (int, string) {
		var stderr bytes.Buffer
		base := []string{"--log-level", "error", "--verify-timeout", a.g.verifyTimeout.String()}
		code := RunContext(ctx, Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: &stderr, Getenv: a.env.Getenv, Self: a.env.Self}, append(base, args...))
		return code, strings.TrimSpace(stderr.String())
	}

	step(1, "Make a self-signed certificate, key and certificate in one file (openssl genrsa + req + cat)", "tlspin cert --out cert.pem")
	if code, msg := sub(out, "cert", "--out", certFile); code != ExitOK {
		return fmt.Errorf("demo: cert failed: %s", msg)
	}

	step(2, "Take its MD5 fingerprint (openssl x509 -md5 -fingerprint | sed | tr); MD5 is what the recipe uses, and it is collision-broken: prefer spkipin", "tlspin fingerprint --algo md5 cert.pem")
	var fp bytes.Buffer
	if code, msg := sub(io.MultiWriter(out, &fp), "fingerprint", "--algo", "md5", certFile); code != ExitOK {
		return fmt.Errorf("demo: fingerprint failed: %s", msg)
	}
	pinHex := strings.TrimSpace(fp.String())

	cert, err := certs.LoadKeyPair(certFile, "")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	addr := ln.Addr().String()
	step(3, "Run a TLS server that prints what it receives", "tlspin serve --listen "+addr+" --cert cert.pem")
	received := &syncbuf.Buffer{}
	srv, err := server.New(server.Config{TLS: pintls.ServerConfig(cert, nil, pintls.Options{}), Output: received})
	if err != nil {
		ln.Close()
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	defer func() { stop(); <-served }()
	fmt.Fprintf(out, "listening on %s\n", addr)

	step(4, "Send a message, pinned to that fingerprint (md5pin decides, in its own process)",
		fmt.Sprintf("tlspin send --verifier md5pin --pin %s %s %q", pinHex, addr, demoMessage))
	if code, msg := sub(out, "send", "--verifier", "md5pin", "--pin", pinHex, addr, demoMessage); code != ExitOK {
		return fmt.Errorf("demo: send with the right pin failed: %s", msg)
	}
	// Client.Send waits for the server to close the connection, so the
	// line is printed by now.
	if got := received.String(); !strings.Contains(got, demoMessage) {
		return fmt.Errorf("demo: server did not print the message (got %q)", got)
	}
	fmt.Fprintf(out, "server printed: %s", received.String())

	wrong := make([]byte, 16)
	rand.Read(wrong)
	wrongHex := hex.EncodeToString(wrong)
	step(5, "Send with a wrong pin: the server is refused and nothing is sent",
		fmt.Sprintf("tlspin send --verifier md5pin --pin %s %s \"should never arrive\"", wrongHex, addr))
	before := received.String()
	code, msg := sub(out, "send", "--verifier", "md5pin", "--pin", wrongHex, addr, "should never arrive")
	if code != ExitRejected {
		return fmt.Errorf("demo: send with a wrong pin exited %d, want %d (rejected): %s", code, ExitRejected, msg)
	}
	fmt.Fprintf(out, "refused (exit %d): %s\n", code, msg)
	if received.String() != before {
		return errors.New("demo: the server received something from the rejected send")
	}
	fmt.Fprintf(out, "\nserver received nothing more.\n\ndemo passed: the right pin sends, a wrong pin sends nothing.\n")
	return nil
}
