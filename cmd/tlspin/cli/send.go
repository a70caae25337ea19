package cli

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/client"
)

type sendFlags struct {
	serverName, cert, key string
	timeout               time.Duration
	v                     verifierFlags
}

func (a *app) sendCommand() *cobra.Command {
	f := &sendFlags{}
	c := &cobra.Command{
		Use:   "send --verifier NAME [--pin PIN] ADDR [MESSAGE]",
		Short: "connect, let the verifier decide on the server, then send a message",
		Long: `Connect to ADDR over TLS, let the verifier(s) decide on the server's
certificate, and only then send MESSAGE (or standard input until EOF when no
MESSAGE is given). If the server is rejected nothing is sent, tlspin exits 3
and says why, with the fingerprint it received and the command that would
trust it.

Each verifier runs as a separate process. --verifier may be repeated, with
--require all (default) or any. Options go after the name
(--verifier allowlist:file=pins.txt) or, with a single verifier, in --opt
KEY=VALUE; --pin V is short for --opt pin=V.`,
		Example: `  tlspin send --verifier md5pin --pin 709f0c... localhost:8081 "hello"
  echo hello | tlspin send --verifier spkipin --pin 'sha256//BASE64=' host:443
  tlspin send --verifier sha256pin:pin=AB:CD:... --verifier tofu --require all host:8081 hi`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error { return a.runSend(cmd, f, args) },
	}
	fs := c.Flags()
	f.v.register(fs, "server")
	fs.StringVar(&f.serverName, "server-name", "", "TLS server name (SNI) to send (default the host of ADDR, unless it is an IP address)")
	fs.DurationVar(&f.timeout, "timeout", client.DefaultTimeout, "dial and handshake timeout")
	fs.StringVar(&f.cert, "cert", "", "client certificate to present (mutual TLS), with its key unless --key is given")
	fs.StringVar(&f.key, "key", "", "private key of --cert, if not in the same file")
	return c
}

func (a *app) runSend(cmd *cobra.Command, f *sendFlags, args []string) error {
	ctx := cmd.Context()
	addr := args[0]
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return usagef("address %q: want HOST:PORT", addr)
	}
	var clientCert *tls.Certificate
	if f.cert != "" {
		c, err := certs.LoadKeyPair(f.cert, f.key)
		if err != nil {
			return err
		}
		clientCert = &c
	} else if f.key != "" {
		return usagef("--key needs --cert")
	}
	vs, err := a.startVerifiers(ctx, &f.v)
	if err != nil {
		return err
	}
	defer vs.Close()
	sn := client.ServerName(addr, f.serverName)
	cfg, confirm := vs.ClientConfigForAddr(sn, addr)
	if clientCert != nil {
		cfg.Certificates = []tls.Certificate{*clientCert}
	}
	conn, err := client.Dial(ctx, addr, cfg, f.timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The server has proved its key: only now may a verifier record it.
	if err := confirm(ctx); err != nil {
		a.log.Warn("the verifier could not record the server it allowed", "error", err)
	}
	a.log.Info("server verified", "addr", addr)
	var msg io.Reader = cmd.InOrStdin()
	if len(args) == 2 {
		msg = strings.NewReader(args[1])
	}
	n, err := client.Send(ctx, conn, msg, f.timeout)
	if err != nil {
		return err
	}
	a.log.Info("sent", "addr", addr, "bytes", n)
	return nil
}
