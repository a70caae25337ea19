package cli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/keypair"
	"github.com/tlspin/tlspin/internal/server"
)

type serveFlags struct {
	listen, cert, key string
	once, json        bool
	recheck           bool
	maxConns, maxLine int
	maxHandshakes     int
	maxConnsPerIP     int
	handshakeTimeout  time.Duration
	idleTimeout       time.Duration
	grace             time.Duration
	watch             time.Duration
	v                 verifierFlags
}

func (a *app) serveCommand() *cobra.Command {
	f := &serveFlags{}
	c := &cobra.Command{
		Use:   "serve --cert FILE [--verifier NAME ...]",
		Short: "run a TLS server that prints what each client sends",
		Long: `Run a TLS server that prints on stdout what each client sends, a whole
line at a time (a carriage return before a newline is dropped with it),
for any number of clients at once. --cert takes a PEM
certificate, and its key unless --key is given (the recipe's cert.pem, key
and certificate in one file, works as is).

It listens on loopback, 127.0.0.1:8081 (the recipe's port), unless --listen
says otherwise: --listen :8081 listens on every interface.

With --verifier, every client must present a certificate that the
verifier(s) allow (mutual TLS); rejected clients are closed and nothing they
sent is printed. A failed handshake is logged with the side that refused:
"client rejected by us" (our verifier said no, or the client sent no
certificate), "client refused our certificate" (the client sent an alert)
or "handshake failed" (anything else: not TLS, a bad signature, a timeout).
Anyone who can connect can cause these: at most ten a second of each
(rejected, refused, failed, and clients that close before their
ClientHello, as a TCP health check does) are warnings, so that a flood of
one hides no other, and at most three in a row then one a second of each
from one address (an IPv6 /64), so that one client's flood hides no other
client's; the rest are debug lines, counted in the next warning of their kind (suppressed=N).
--json still reports every one.

Hostile clients cannot lock others out: a handshake must finish within
--handshake-timeout, at most --max-handshakes run at once, one address (an
IPv6 /64) holds at most --max-conns-per-ip connections, and when --max-conns or
--max-handshakes is reached a connection is closed to make room rather than
a new client kept waiting: the one idle the longest of the address holding
the most, one in its handshake first (so that one flooding address, or a
few under --max-conns-per-ip, close their own, not other clients'). A connection closed that
way, or by --grace at shutdown, or no longer allowed (below), is reset, not
closed cleanly: its client, reading to the end, sees an error, not a clean
end of what it sent.

--once serves one client, then exits: one whose handshake succeeded (a
stray connection or a rejected client does not use it up).

With --verifier, a client is verified at its handshake, and again whenever
a verifier's policy changes (an allowlist or a tofu file edited, a plugin
restarted): one the verifiers no longer allow, or cannot decide on
(failing closed), is closed with a warning, within a second or two, and
nothing it sends after is printed. --recheck=false judges a client once,
at its handshake.

With --json, stdout carries one JSON object per line per event instead:
connection, data (one line a client sent), rejection (with the reason, "by":
rejected, refused or failed as above, and the client certificate's
fingerprints) and close ("by": "rejected" when the verifiers, asked again,
no longer allowed the client). Data that is not UTF-8
comes as data_base64. Data that no newline ended has "unterminated": true:
a piece of a line longer than --max-line, or what a client had sent of a
line when its connection ended or was cut (a reset, --idle-timeout, a
limit, --grace): without --json such a piece is printed as a line, and
nothing tells it from one the client finished.

SIGHUP reloads --cert and --key, as the proxy does (one that comes while
the verifiers are starting, once they have); changes on disk are picked
up too (checked every --watch-interval). Open connections continue,
new ones get the new certificate; one that does not load is logged and the
one in use stays. SIGINT or SIGTERM stops accepting, lets open connections
finish within --grace, stops the verifier plugins and exits 0; a second
signal ends it at once (exit 130 or 143). When stdout cannot be written
(a full disk, a reader that exited: | head -1), serve stops the same way
but exits 1, saying why, even if a signal comes while it drains: the
client whose line was lost has its connection reset rather than closed
cleanly, and nothing more is printed.`,
		Example: `  tlspin serve --cert cert.pem
  tlspin serve --listen 127.0.0.1:8443 --cert cert.pem --once
  tlspin serve --listen :8081 --cert cert.pem   # every interface
  tlspin serve --cert cert.pem --verifier spkipin --pin sha256//BASE64=`,
		Args: noArgs("give the address with --listen ADDR"),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runServe(cmd, f) },
	}
	fs := c.Flags()
	fs.StringVar(&f.listen, "listen", defaultListen, "address to listen on: PORT (loopback), HOST:PORT, or :PORT for every interface; loopback and the recipe's port by default")
	fs.StringVar(&f.cert, "cert", "", "PEM certificate file, with its key unless --key is given (required)")
	fs.StringVar(&f.key, "key", "", "PEM private key file, if not in --cert")
	fs.BoolVar(&f.once, "once", false, "serve one client whose handshake succeeded, then exit (like the recipe)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object per event (connection, data, rejection, close) instead of raw lines")
	fs.BoolVar(&f.recheck, "recheck", true, recheckUsage)
	fs.IntVar(&f.maxConns, "max-conns", server.DefaultMaxConns, "most connections held at once; when full, the one idle the longest of the address (IPv6: /64) holding the most is closed for a new client")
	fs.IntVar(&f.maxHandshakes, "max-handshakes", server.DefaultMaxHandshakes, "most connections still in their TLS handshake at once; when full, the one idle the longest of the address (IPv6: /64) holding the most is closed")
	fs.IntVar(&f.maxConnsPerIP, "max-conns-per-ip", server.DefaultMaxConnsPerIP, "most connections from one client IP address (an IPv6 /64 counts as one); more are closed at once (0: no cap)")
	fs.IntVar(&f.maxLine, "max-line", server.DefaultMaxLine, "most bytes of one line held per connection; a longer line is printed in pieces of this size")
	fs.DurationVar(&f.handshakeTimeout, "handshake-timeout", server.DefaultHandshakeTimeout, "longest a TLS handshake (verification included) may take")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", server.DefaultIdleTimeout, "close a connection that sends nothing for this long")
	fs.DurationVar(&f.grace, "grace", server.DefaultGracePeriod, "on SIGINT/SIGTERM, how long open connections may finish")
	fs.DurationVar(&f.watch, "watch-interval", time.Second, "how often --cert and --key are checked for changes on disk")
	f.v.register(fs, "clients (mutual TLS)")
	return c
}

// defaultListen is loopback: a line printer open to the network by
// default would surprise people.
const defaultListen = "127.0.0.1:8081"

func (a *app) runServe(cmd *cobra.Command, f *serveFlags) error {
	ctx := cmd.Context()
	hup, release := catchHUP()
	defer release()
	defer catchSIGPIPE()()
	if f.cert == "" {
		return usagef("serve needs --cert FILE (make one with: tlspin cert --out cert.pem)")
	}
	if err := checkListen("--listen", f.listen); err != nil {
		return err
	}
	cert, err := keypair.Load(f.cert, f.key, a.log)
	if err != nil {
		return badInput(err)
	}
	var vs *tlspin.Verifiers
	if f.v.given() {
		if vs, err = a.startVerifiers(ctx, &f.v); err != nil {
			return err
		}
		defer vs.Close()
	}
	addr := listenAddr(f.listen)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("serve: cannot listen on %q: address already in use (is another server running? pick another --listen)", addr)
		}
		return fmt.Errorf("serve: cannot listen on %q: %w", addr, err)
	}
	tlsCfg := pintls.ServerConfig(*cert.Current(), nil, pintls.Options{})
	// GetConfigForClient clones this very config: reloads reach it.
	tlsCfg.Certificates, tlsCfg.GetCertificate = nil, cert.GetCertificate
	var confirm server.Confirm
	if vs != nil {
		tlsCfg = vs.HookServerConfig(tlsCfg)
		confirm = vs.Confirm
	}
	var onEvent func(server.Event) error
	if f.json {
		onEvent = jsonEvents(cmd.OutOrStdout())
	}
	srv, err := server.New(server.Config{
		TLS:              tlsCfg,
		Confirm:          confirm,
		Output:           cmd.OutOrStdout(),
		OnEvent:          onEvent,
		Log:              a.log,
		MaxConns:         f.maxConns,
		MaxHandshakes:    f.maxHandshakes,
		MaxConnsPerIP:    perIPLimit(f.maxConnsPerIP),
		MaxLine:          f.maxLine,
		HandshakeTimeout: f.handshakeTimeout,
		IdleTimeout:      f.idleTimeout,
		GracePeriod:      f.grace,
		Once:             f.once,
		Recheck:          recheckWith(vs, f.recheck, true, ""),
	})
	if err != nil {
		ln.Close()
		return err
	}
	stop := keepCurrent(ctx, hup, cert, f.watch, a)
	defer stop()
	a.log.Info("listening", "addr", ln.Addr().String(), "mutual_tls", vs != nil)
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	a.log.Info("server stopped")
	return nil
}

// perIPLimit maps the flag's 0 (no cap) to the loop's negative.
func perIPLimit(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

// jsonEvent is the --json form of a server.Event: one object per line.
type jsonEvent struct {
	Time       string  `json:"time"`
	Event      string  `json:"event"`
	Conn       uint64  `json:"conn"`
	Remote     string  `json:"remote"`
	Data       *string `json:"data,omitempty"`
	DataBase64 string  `json:"data_base64,omitempty"`
	// Unterminated: no newline ended the data (see server.Event).
	Unterminated bool   `json:"unterminated,omitempty"`
	Reason       string `json:"reason,omitempty"`
	By           string `json:"by,omitempty"`
	PeerSHA256   string `json:"peer_sha256,omitempty"`
	PeerSPKI     string `json:"peer_spki,omitempty"`
	Bytes        *int64 `json:"bytes,omitempty"`
}

// jsonEvents returns an OnEvent that writes each event to w as one JSON
// line, in a single write so that a reader never sees half an object. A
// write that fails stops the server.
func jsonEvents(w io.Writer) func(server.Event) error {
	return func(e server.Event) error {
		j := jsonEvent{
			Time:       e.Time.UTC().Format(time.RFC3339Nano),
			Event:      string(e.Kind),
			Conn:       e.Conn,
			Remote:     e.Remote,
			Reason:     e.Reason,
			By:         string(e.By),
			PeerSHA256: e.PeerSHA256,
			PeerSPKI:   e.PeerSPKI,
		}
		switch e.Kind {
		case server.EventData:
			j.Unterminated = e.Unterminated
			if utf8.Valid(e.Data) {
				d := string(e.Data)
				j.Data = &d
			} else {
				j.DataBase64 = base64.StdEncoding.EncodeToString(e.Data)
			}
		case server.EventClose:
			j.Bytes = &e.Bytes
		}
		b, err := json.Marshal(j)
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
}
