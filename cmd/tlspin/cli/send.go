package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/abort"
	"github.com/tlspin/tlspin/internal/client"
	"github.com/tlspin/tlspin/internal/keypair"
)

type sendFlags struct {
	serverName, cert, key string
	timeout, idleTimeout  time.Duration
	noReply               bool
	halfClose             string
	v                     verifierFlags
}

func (a *app) sendCommand() *cobra.Command {
	f := &sendFlags{}
	c := &cobra.Command{
		Use:   "send --verifier NAME [--pin PIN] ADDR [MESSAGE]",
		Short: "connect, let the verifier decide on the server, send a message, print the reply",
		Long: `Connect to ADDR over TLS, let the verifier(s) decide on the server's
certificate, and only then send MESSAGE (or standard input until EOF when no
MESSAGE is given). If the server is rejected nothing is sent, tlspin exits 3
and says why, with the fingerprint it received and the command that would
trust it.

Whatever the server answers is printed on stdout as it arrives (like
openssl s_client -quiet or ncat). After the message, send closes its write
side at once (a TLS close_notify, then TCP FIN: --half-close always, the
default), so that a server reading to the end of the message, as the
recipe's does, sees where it ends, and waits for the server to close. A
server that answers a request and closes without reading further
(Python's recv, sendall, close) then closes with our close_notify unread,
and its kernel resets the connection, which discards the reply in flight:
send exits 5, since the message may have arrived (do not resend
blindly). For such a server, --half-close auto closes our side only once
the server has sent nothing, after the message, for 3 ms plus twice what it
took to answer our ClientHello (four times that after part of a reply),
and not at all once the server has closed; a server that reads to the end
then waits that moment more. --half-close never keeps it open (like openssl
s_client -quiet), for a server slower to answer than that moment.
A send that fails or is interrupted before the whole message is out
resets the connection instead (no close_notify), so that the server sees
an error, never the end of a message.

A server that keeps the connection open is given --idle-timeout to send
more, then send exits 0 with what it got; a server that reads none of the
message for --idle-timeout makes send fail. --no-reply prints nothing of the reply (it still waits for the server
to close, so that a refusal is seen and nothing is lost in flight). A
server that refuses our client certificate after the handshake (TLS 1.3)
makes send fail.

Each verifier runs as a separate process. --verifier may be repeated, with
--require all (default) or any. Options go after the name
(--verifier allowlist:file=pins.txt) or, with a single verifier, in --opt
KEY=VALUE; --pin V is short for --opt pin=V.`,
		Example: `  tlspin send --verifier md5pin --pin 709f0c... localhost:8081 "hello"
  echo hello | tlspin send --verifier spkipin --pin 'sha256//BASE64=' host:443
  printf 'GET / HTTP/1.0\r\n\r\n' | tlspin send --verifier tofu example.com:443
  tlspin send --verifier sha256pin:pin=AB:CD:... --verifier tofu --require all host:8081 hi
  tlspin send --half-close never --idle-timeout 30s --verifier spkipin --pin 'sha256//BASE64=' host:8443 "slow query"`,
		Args: argSpec{min: 1, max: 2, takes: "HOST:PORT [MESSAGE]", tooFew: "give the server's address", tooMany: "quote a message that has spaces"}.check,
		RunE: func(cmd *cobra.Command, args []string) error { return a.runSend(cmd, f, args) },
	}
	fs := c.Flags()
	f.v.register(fs, "server")
	fs.StringVar(&f.serverName, "server-name", "", "TLS server name (SNI) to send (default the host of ADDR, unless it is an IP address)")
	fs.DurationVar(&f.timeout, "timeout", client.DefaultTimeout, "longest the TCP connect and the TLS handshake (verification included) may take together")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", client.DefaultIdleTimeout, "once the message is sent, how long to wait for more of the reply before exiting 0; while sending, how long the server may read none of it before send fails")
	fs.BoolVar(&f.noReply, "no-reply", false, "do not print what the server sends back")
	fs.StringVar(&f.halfClose, "half-close", "always", "when to close our write side (TLS close_notify) after the message: always (right away), auto (once the server has sent nothing for a moment, never once it has closed: for a server that answers and closes without reading to the end), never (wait for the server to close, or --idle-timeout)")
	fs.StringVar(&f.cert, "cert", "", "client certificate to present (mutual TLS), with its key unless --key is given")
	fs.StringVar(&f.key, "key", "", "private key of --cert, if not in the same file")
	return c
}

// started is the outcome of starting the verifiers.
type started struct {
	vs  *tlspin.Verifiers
	err error
}

func (a *app) runSend(cmd *cobra.Command, f *sendFlags, args []string) error {
	ctx := cmd.Context()
	addr := args[0]
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("address %q: want HOST:PORT%s", addr, addressHint(addr))
	}
	if err := checkPort("address", addr, port, false); err != nil {
		return err
	}
	if err := checkServerName(f.serverName); err != nil {
		return err
	}
	halfClose, err := client.ParseHalfClose(f.halfClose)
	if err != nil {
		return usagef("--half-close %q: want always, auto or never", f.halfClose)
	}
	var clientCert *tls.Certificate
	if f.cert != "" {
		c, err := certs.LoadKeyPair(f.cert, f.key)
		if err != nil {
			return badInput(err)
		}
		keypair.WarnIfReadable(a.log, f.cert, f.key)
		clientCert = &c
	} else if f.key != "" {
		return usagef("--key needs --cert")
	}
	// What can be refused without starting a plugin is refused before
	// anything reaches the server.
	unchecked, err := a.precheckVerifiers(ctx, &f.v)
	if err != nil {
		return err
	}
	// The plugins start while the connection is made and, when every
	// verifier is built in (its options checked above), while the
	// handshake runs up to where it needs their decision (VerifyConnection
	// waits for them there): a one-shot send pays for the slower of the
	// two, not for both. A failed start is the error, whatever the
	// handshake made of it.
	starting := make(chan started, 1)
	hctx, stopHandshake := context.WithCancel(ctx)
	defer stopHandshake()
	go func() {
		vs, err := a.startVerifiers(ctx, &f.v)
		if err != nil {
			stopHandshake() // a server that is slow to answer must not delay the error
		}
		starting <- started{vs, err}
	}()
	verifiers := sync.OnceValues(func() (*tlspin.Verifiers, error) {
		r := <-starting
		return r.vs, r.err
	})
	// Once called, later calls wait for the first to finish: the deferred
	// call waits for the one started after the commit below.
	closeVerifiers := sync.OnceFunc(func() {
		if vs, err := verifiers(); err == nil {
			vs.Close()
		}
	})
	defer closeVerifiers()
	timeout := f.timeout
	if timeout <= 0 {
		timeout = client.DefaultTimeout
	}
	t0 := time.Now()
	raw, err := client.DialTCP(hctx, addr, timeout)
	if err != nil {
		if _, serr := verifiers(); serr != nil {
			return serr
		}
		return err
	}
	if len(unchecked) > 0 {
		// Only its plugin's Configure judges an external verifier's
		// options: no ClientHello goes out before it has, so that a typo
		// ends with a closed connection the server saw nothing on, not
		// with a handshake aborted by an alert the server logs as a
		// refusal of its certificate. The wait is the plugin's start,
		// which --plugin-start-timeout bounds: --timeout, for the connect
		// and the handshake, does not count it.
		w0 := time.Now()
		if _, serr := verifiers(); serr != nil {
			raw.Close()
			return serr
		}
		t0 = t0.Add(time.Since(w0))
	}
	sn := client.ServerName(addr, f.serverName)
	var confirm func(context.Context, *tls.Conn) error
	// How long the server took to answer the ClientHello (a round trip
	// and its own delay, before our verification): it bounds how long
	// --half-close auto waits for an answer to the message.
	var hsStart time.Time
	var answered time.Duration
	cfg := &tls.Config{
		ServerName: sn,
		MinVersion: tls.VersionTLS12,
		// The verifiers' configuration decides, in VerifyConnection, as
		// every configuration of tlspin.Verifiers does.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			answered = time.Since(hsStart)
			vs, err := verifiers()
			if err != nil {
				return err
			}
			var vcfg *tls.Config
			vcfg, confirm = vs.ClientConfigForAddr(sn, addr)
			return vcfg.VerifyConnection(cs)
		},
	}
	if clientCert != nil {
		// Given whatever CAs the server's request names, as openssl
		// s_client and curl do: a server that pins its clients often
		// names CAs ours was not issued by, and crypto/tls would then
		// send no certificate at all. It reaches only a server the
		// verifiers accepted: they run before it is sent.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return clientCert, nil
		}
	}
	hsStart = time.Now()
	conn, err := client.Handshake(hctx, raw, addr, cfg, timeout-time.Since(t0))
	if err != nil {
		if _, serr := verifiers(); serr != nil {
			return serr
		}
		return err
	}
	defer conn.Close()
	// The server has proved its key: only now may a verifier record it.
	// A first use that could not be recorded (another process recorded
	// another key for the server meanwhile) is a rejection: nothing is
	// sent, and the connection is reset rather than closed, since a
	// close_notify would tell the server that an empty message was all.
	if err := confirm(ctx, conn); err != nil {
		abort.Conn(conn)
		return err
	}
	// The verifiers have nothing left to do: they stop while the message
	// goes out.
	go closeVerifiers()
	var msg io.Reader = cmd.InOrStdin()
	if len(args) == 2 {
		msg = strings.NewReader(args[1])
	} else if isTerminal(msg) {
		fmt.Fprintln(cmd.ErrOrStderr(), "tlspin: reading the message from the terminal: end it with Ctrl-D, or give MESSAGE as an argument")
	}
	var reply io.Writer = cmd.OutOrStdout()
	if f.noReply {
		reply = nil
	}
	res, err := client.Send(ctx, conn, msg, reply, client.SendOptions{Idle: f.idleTimeout, HalfClose: halfClose, Quiet: client.DefaultQuiet + 2*answered})
	if errors.Is(err, client.ErrRefused) {
		if clientCert == nil {
			return fmt.Errorf("%w (if it requires a client certificate, give one with --cert)", err)
		}
		return fmt.Errorf("%w (if it requires a client certificate, is ours one it trusts?)", err)
	}
	if err != nil {
		return err
	}
	if res.IdleTimedOut {
		a.log.Info("sent; the server kept the connection open, stopped waiting", "addr", addr, "bytes_sent", res.Sent, "bytes_received", res.Received, "idle_timeout", f.idleTimeout)
		return nil
	}
	a.log.Debug("sent", "addr", addr, "bytes_sent", res.Sent, "bytes_received", res.Received)
	return nil
}

// addressHint says what a user probably meant by s, which is neither a file
// nor HOST:PORT: an IPv6 address needs brackets, a server a port.
func addressHint(s string) string {
	switch {
	case strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "["):
		if i := strings.LastIndex(s, ":"); net.ParseIP(s[:i]) != nil {
			return fmt.Sprintf(" (an IPv6 address goes in brackets: [%s]:%s)", s[:i], s[i+1:])
		}
	case !strings.ContainsAny(s, ":/"):
		return " (for a server, give HOST:PORT)"
	}
	return ""
}
