package cli

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/net/netutil"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/client"
	"github.com/tlspin/tlspin/internal/keypair"
	"github.com/tlspin/tlspin/internal/proxy"
	"github.com/tlspin/tlspin/internal/server"
	"github.com/tlspin/tlspin/verifiers/pinverifier"
)

type proxyFlags struct {
	listen, target, cert, key, serverName string
	metrics                               string
	json, recheck                         bool
	maxConns, maxHandshakes, maxPerIP     int
	handshakeTimeout, idleTimeout         time.Duration
	dialTimeout, grace, watch             time.Duration
	v                                     verifierFlags
}

func (a *app) proxyCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "proxy server|client",
		Short: "pinned TLS in front of any program: a tunnel like stunnel, verified by plugins",
		Long: `Put pinned TLS in front of a program that speaks plaintext, in either
direction:

  tlspin proxy server   accepts TLS, lets the verifiers decide on each client
                        (mutual TLS with --verifier), then connects to --target
                        in plaintext
  tlspin proxy client   accepts plaintext, connects to --target over TLS, lets
                        the verifiers decide on the server, then copies bytes

A peer that is rejected never reaches the other side: the handshake (and
verification) finishes before the target is dialled or a byte of the local
client is read. Half-closes and resets pass through. A connection the proxy
cuts itself (--grace over, its peer no longer allowed, evicted, refused for
its address, --idle-timeout, the target unreachable or rejected) is reset,
never closed cleanly: a peer reading to the end sees an error, not a
stream that looks complete.

proxy client's --cert is lent to whoever can connect to --listen: on TCP,
loopback included, that is every local user; --listen unix:/path keeps it
to this user.`,
		Example: `  tlspin proxy server --listen :8443 --target 127.0.0.1:5432 --cert server.pem --verifier spkipin --pin sha256//CLIENT_SPKI=
  tlspin proxy client --listen 5432 --target db.example:8443 --cert client.pem --verifier spkipin --pin sha256//SERVER_SPKI=`,
	}
	c.AddCommand(a.proxyModeCommand(proxy.ServerMode), a.proxyModeCommand(proxy.ClientMode))
	return c
}

func (a *app) proxyModeCommand(mode proxy.Mode) *cobra.Command {
	f := &proxyFlags{}
	c := &cobra.Command{Args: noArgs("give the addresses with --listen ADDR and --target ADDR")}
	if mode == proxy.ServerMode {
		c.Use = "server --listen ADDR --target ADDR --cert FILE [--verifier NAME ...]"
		c.Short = "accept TLS, verify clients, forward plaintext to --target"
		c.Long = `Accept TLS on --listen and, for each client the verifiers allow (mutual TLS
when --verifier is given; without it TLS is only terminated, like stunnel's
server mode), connect to --target in plaintext and copy bytes both ways.`
		c.Example = `  tlspin proxy server --listen :8443 --target 127.0.0.1:5432 --cert cert.pem --verifier spkipin --pin sha256//BASE64=
  tlspin proxy server --listen 8443 --target unix:/run/app.sock --cert cert.pem --key key.pem`
	} else {
		c.Use = "client --listen ADDR --target HOST:PORT --verifier NAME ... [--cert FILE]"
		c.Short = "accept plaintext, connect over TLS to --target, verify it, forward"
		c.Long = `Accept plaintext on --listen, connect to --target over TLS, let the
verifiers decide on its certificate, and copy bytes both ways. A rejected
server means the local connection is closed at once, nothing sent upstream.
--cert presents a client certificate (mutual TLS). A unix:/path target has
no host name: no server name (SNI) is sent unless --server-name gives one,
which a verifier that checks the name (ca) then needs.

On TCP, even loopback, every local user can connect to --listen, and with
--cert reaches the target as the client whose key is pinned. --listen
unix:/path keeps that to this user: the socket has mode 0600, and a
connection from any other uid (root excepted, which can read the key
anyway) is closed unread, with a warning. An existing path is replaced only
if it is a stale socket of this user's; a path through a directory another
user could write is refused; the socket is removed on exit.`
		c.Example = `  tlspin proxy client --listen 5432 --target db.example:8443 --verifier spkipin --pin sha256//BASE64=
  tlspin proxy client --listen "unix:${XDG_RUNTIME_DIR:?}/db.sock" --target db.example:8443 --cert me.pem --verifier spkipin --pin sha256//BASE64=
  curl http://127.0.0.1:8080/ # through: tlspin proxy client --listen 8080 --target example.com:443 --verifier tofu`
	}
	c.Long += `

--listen PORT listens on loopback; HOST:PORT as given (:PORT is every
interface). --target is HOST:PORT or unix:/path.

Limits: at most --max-conns connections, --max-handshakes of them in their
handshake, --max-conns-per-ip from one address, an IPv6 /64 counting as one
(more are refused at once, with a warning); when full, a connection is
closed to make room: the one idle the longest of the address holding the
most, one in its handshake first. --handshake-timeout bounds the
handshake (verification included), --dial-timeout the connection to the
target, --idle-timeout a connection with no bytes either way (a peer that
reads slowly, or a stream still being written, is not idle; a stream
that had ended cleanly is closed, not reset, by an idle close). A connection
closed by a limit is reset, so that neither peer takes it for a clean end;
over a unix socket (--listen or --target unix:/path) there is no reset, and
that peer sees a plain close.

A connection is verified at its handshake, and again whenever a verifier's
policy changes (an allowlist or a tofu file edited, a plugin restarted):
one whose peer the verifiers no longer allow, or cannot decide on (failing
closed), is closed with a warning. So removing a pin cuts off the peer's
open connections too, within a second or two (a tofu line removed makes
its peer a first use again, which tofu's default mode allows: replace
the line to cut the peer off). --recheck=false judges a connection once,
at its handshake.

SIGHUP reloads --cert and --key (one that comes while the verifiers are
starting, once they have); changes on disk are picked up too (checked
every --watch-interval). Established connections continue, new ones get
the new certificate (without --cert, SIGHUP is logged and changes
nothing). SIGINT or SIGTERM stops accepting, lets connections
finish within --grace, stops the verifier plugins and exits 0; a second
signal ends it at once (exit 130 or 143).

--json prints one JSON object per line per event on stdout: accepted,
rejected (with "by": "rejected" by our verifiers, "refused" by the peer,
or "failed"; the reason and the peer's fingerprints) and closed (bytes
each way and duration; "by": "refused" when the peer's TLS alert ended it,
which is how, in TLS 1.3, a server refuses proxy client's --cert, and
"rejected" when the verifiers, asked again, no longer allowed the peer).
When stdout cannot be written (a full disk, a reader that exited), the
proxy says so once on stderr, writes no more events and goes on proxying;
it then exits 1 naming the error when it stops, SIGINT or SIGTERM
included.
--metrics ADDR serves Prometheus metrics on http://ADDR/metrics.`
	c.RunE = func(cmd *cobra.Command, _ []string) error { return a.runProxy(cmd, mode, f) }
	fs := c.Flags()
	if mode == proxy.ServerMode {
		fs.StringVar(&f.listen, "listen", "", "address to accept on: PORT (loopback), HOST:PORT or :PORT (every interface) (required)")
	} else {
		fs.StringVar(&f.listen, "listen", "", "address to accept on: PORT (loopback: any local user may connect), HOST:PORT, :PORT (every interface), or unix:/path (only this user may connect) (required)")
	}
	fs.StringVar(&f.target, "target", "", "where to connect: HOST:PORT or unix:/path (required)")
	if mode == proxy.ServerMode {
		fs.StringVar(&f.cert, "cert", "", "PEM certificate to present, with its key unless --key is given (required)")
		f.v.register(fs, "clients (mutual TLS)")
	} else {
		fs.StringVar(&f.cert, "cert", "", "client certificate to present (mutual TLS), with its key unless --key is given")
		fs.StringVar(&f.serverName, "server-name", "", "TLS server name (SNI) to send, and the name a verifier such as ca checks (default the host of --target; none for an IP address or unix:/path)")
		f.v.register(fs, "server")
	}
	fs.StringVar(&f.key, "key", "", "PEM private key of --cert, if not in the same file")
	fs.BoolVar(&f.json, "json", false, "print one JSON object per event (accepted, rejected, closed) on stdout")
	fs.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on http://ADDR/metrics; ADDR as --listen's: PORT (loopback), HOST:PORT or :PORT")
	fs.BoolVar(&f.recheck, "recheck", true, recheckUsage)
	fs.IntVar(&f.maxConns, "max-conns", proxy.DefaultMaxConns, "most connections held at once; when full, the one idle the longest of the address (IPv6: /64) holding the most is closed")
	if mode == proxy.ServerMode {
		fs.IntVar(&f.maxHandshakes, "max-handshakes", server.DefaultMaxHandshakes, "most connections in their handshake at once; when full, the one idle the longest of the address (IPv6: /64) holding the most is closed")
	} else {
		// A server bounds handshakes against remote clients that start
		// them and stall; a proxy client's are its local program's
		// connections being set up to the target, which a pool opens in
		// bursts: closing some to make room would fail them at random.
		fs.IntVar(&f.maxHandshakes, "max-handshakes", proxy.DefaultMaxConns, "most local connections being set up (target dialled, handshake) at once; when full, the one idle the longest of the address holding the most is closed")
	}
	if mode == proxy.ServerMode {
		fs.IntVar(&f.maxPerIP, "max-conns-per-ip", server.DefaultMaxConnsPerIP, "most connections from one client address, an IPv6 /64 counting as one (0: no cap)")
	} else {
		// Local clients all come from one address, loopback most often:
		// a cap there would cap the local program, a pool of 40
		// connections say, rather than one of many clients.
		fs.IntVar(&f.maxPerIP, "max-conns-per-ip", 0, "most connections from one local client address, on a TCP --listen (default 0: no cap, as local clients usually all come from 127.0.0.1; --max-conns still applies)")
	}
	fs.DurationVar(&f.handshakeTimeout, "handshake-timeout", server.DefaultHandshakeTimeout, "longest a TLS handshake (verification included) may take")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", time.Hour, "close a connection with no byte read or written either way for this long, a slow reader's included (0: never)")
	fs.DurationVar(&f.dialTimeout, "dial-timeout", proxy.DefaultDialTimeout, "longest connecting to --target may take")
	fs.DurationVar(&f.grace, "grace", server.DefaultGracePeriod, "on SIGINT/SIGTERM, how long open connections may finish")
	fs.DurationVar(&f.watch, "watch-interval", time.Second, "how often --cert and --key are checked for changes on disk")
	return c
}

// listenAddr makes a bare port a loopback address.
func listenAddr(s string) string {
	if !strings.Contains(s, ":") {
		return net.JoinHostPort("127.0.0.1", s)
	}
	return s
}

// checkListen refuses a TCP address to listen on, given to flag (--listen,
// --metrics), that no socket can take (no port, a port out of range, an
// unknown service name) as a usage error, before any verifier starts.
// Port 0 is any free port. A bare word that is no port (a host alone) is
// said to lack one; a bare number, to be out of range.
func checkListen(flag, s string) error {
	_, port, err := net.SplitHostPort(listenAddr(s))
	if err != nil || !strings.Contains(s, ":") && !allDigits(s) && checkPort("", s, port, true) != nil {
		return usagef("%s %q: want PORT, HOST:PORT or :PORT", flag, s)
	}
	return checkPort(flag, s, port, true)
}

// allDigits reports whether s is a non-empty run of decimal digits.
func allDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// checkPort refuses a port that is out of range or a service name the
// system does not know; 0 only where zeroOK (a listener).
func checkPort(what, addr, port string, zeroOK bool) error {
	n, err := net.LookupPort("tcp", port)
	if err != nil || n == 0 && !zeroOK {
		lo := 1
		if zeroOK {
			lo = 0
		}
		return usagef("%s %q: port %q: want %d to 65535 or a service name", what, addr, port, lo)
	}
	return nil
}

// hintServerName adds to a rejection by verify, of a target that has no
// host name (unix:/path) and so was sent no server name, that a verifier
// checking the name (ca) needs --server-name: ca's own reason can only
// name its option.
func hintServerName(verify func(tls.ConnectionState) error) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		err := verify(cs)
		if errors.Is(err, tlspin.ErrRejected) {
			return fmt.Errorf("%w (a unix:/path target has no host name, so no server name was sent: if a verifier checks it, as ca does, give --server-name NAME)", err)
		}
		return err
	}
}

// proxyHint rewrites the hint of a rejection by verify that says how to
// pin the peer: the built-in pin verifiers, which cannot tell which command
// asks them, write it as tlspin serve's (a client rejected) or tlspin
// send's (a server rejected, ending with its address), and a user copying
// it under proxy would run another command. target is --target, which
// send's form ends with. The error still wraps verify's.
func proxyHint(verify func(tls.ConnectionState) error, mode proxy.Mode, target string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		err := verify(cs)
		if !errors.Is(err, tlspin.ErrRejected) {
			return err
		}
		msg := err.Error()
		if mode == proxy.ServerMode {
			msg = strings.Replace(msg, "pin it: tlspin serve --verifier ", "pin it: tlspin proxy server --verifier ", 1)
		} else if before, hint, ok := strings.Cut(msg, "pin it: tlspin send --verifier "); ok {
			// NAME --pin VALUE TARGET: TARGET becomes "...", as in
			// serve's form (the rest of the command line).
			fields := strings.SplitN(hint, " ", 4)
			if len(fields) >= 4 && fields[1] == "--pin" {
				if rest, ok := strings.CutPrefix(fields[3], pinverifier.ShellQuote(target)); ok {
					hint = strings.Join(fields[:3], " ") + " ..." + rest
				}
			}
			msg = before + "pin it: tlspin proxy client --verifier " + hint
		}
		if msg == err.Error() {
			return err
		}
		return &rewordedError{msg: msg, err: err}
	}
}

// rewordedError is err with another text.
type rewordedError struct {
	msg string
	err error
}

func (e *rewordedError) Error() string { return e.msg }
func (e *rewordedError) Unwrap() error { return e.err }

func (a *app) runProxy(cmd *cobra.Command, mode proxy.Mode, f *proxyFlags) error {
	ctx := cmd.Context()
	hup, release := catchHUP()
	defer release()
	defer catchSIGPIPE()()
	switch {
	case f.listen == "":
		return usagef("proxy needs --listen ADDR")
	case mode == proxy.ServerMode && strings.HasPrefix(f.listen, "unix:"):
		return usagef("proxy server --listen %q: a unix socket is for proxy client (it keeps --cert to this user); proxy server listens on TCP", f.listen)
	case f.listen == "unix:":
		return usagef("--listen %q: want unix:/path (is a variable in it unset?)", f.listen)
	case strings.HasPrefix(f.listen, "unix:") && f.maxPerIP != 0:
		return usagef("--max-conns-per-ip %d: the clients of a unix socket have no address to count them by (only this user may connect to it); bound them with --max-conns", f.maxPerIP)
	case f.target == "":
		return usagef("proxy needs --target HOST:PORT or unix:/path")
	case mode == proxy.ServerMode && f.cert == "":
		return usagef("proxy server needs --cert FILE (make one with: tlspin cert --out cert.pem)")
	case f.key != "" && f.cert == "":
		return usagef("--key needs --cert")
	}
	if path, ok := strings.CutPrefix(f.listen, "unix:"); ok {
		// Before any verifier starts, as a TCP address is checked.
		if err := proxy.CheckUnixListen(path); err != nil {
			return usagef("--listen %q: %w", f.listen, err)
		}
	} else if err := checkListen("--listen", f.listen); err != nil {
		return err
	}
	if f.metrics != "" {
		if err := checkListen("--metrics", f.metrics); err != nil {
			return err
		}
	}
	if err := proxy.CheckTarget(f.target); err != nil {
		return usagef("%v%s", err, addressHint(f.target))
	}
	if err := checkServerName(f.serverName); err != nil {
		return err
	}
	var cert *keypair.Certificate
	if f.cert != "" {
		var err error
		if cert, err = keypair.Load(f.cert, f.key, a.log); err != nil {
			return badInput(err)
		}
	}
	var m *proxy.Metrics
	if f.metrics != "" {
		m = proxy.NewMetrics(strings.Join(verifierNames(f.v.specs), "+"))
	}
	var vs *tlspin.Verifiers
	if mode == proxy.ClientMode || len(f.v.specs) > 0 || len(f.v.pins) > 0 || len(f.v.opts) > 0 {
		var err error
		if vs, err = a.startVerifiers(ctx, &f.v); err != nil {
			return err
		}
		defer vs.Close()
		if m != nil {
			m.CounterFunc("tlspin_verifier_restarts_total", "Verifier plugin restarts.", func() float64 { return float64(vs.Stats().PluginRestarts) })
			m.CounterFunc("tlspin_verifier_cache_hits_total", "Verdicts answered from the verdict cache.", func() float64 { return float64(vs.Stats().CacheHits) })
		}
	}
	var (
		tlsCfg    *tls.Config
		confirm   server.Confirm
		clientTLS func() (*tls.Config, server.Confirm)
		recheck   server.Recheck
	)
	if mode == proxy.ServerMode {
		tlsCfg = pintls.ServerConfig(*cert.Current(), nil, pintls.Options{})
		// GetConfigForClient clones this very config: reloads reach it.
		tlsCfg.Certificates, tlsCfg.GetCertificate = nil, cert.GetCertificate
		if vs != nil {
			tlsCfg = vs.HookServerConfig(tlsCfg)
			confirm = vs.Confirm
			choose := tlsCfg.GetConfigForClient
			tlsCfg.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
				c, err := choose(hi)
				if c != nil {
					c.VerifyConnection = m.VerifyConnection(proxyHint(c.VerifyConnection, mode, f.target))
				}
				return c, err
			}
		}
		recheck = recheckWith(vs, f.recheck, true, "")
	} else {
		sn := client.ServerName(f.target, f.serverName)
		unnamed := sn == "" && strings.HasPrefix(f.target, "unix:")
		clientTLS = func() (*tls.Config, server.Confirm) {
			c, confirm := vs.ClientConfigForAddr(sn, f.target)
			c.VerifyConnection = proxyHint(c.VerifyConnection, mode, f.target)
			if unnamed {
				c.VerifyConnection = hintServerName(c.VerifyConnection)
			}
			c.VerifyConnection = m.VerifyConnection(c.VerifyConnection)
			if cert != nil {
				c.GetClientCertificate = cert.GetClientCertificate
			}
			return c, confirm
		}
		recheck = recheckWith(vs, f.recheck, false, sn)
	}
	var onEvent func(proxy.Event)
	lost := func() error { return nil }
	if f.json {
		onEvent, lost = proxyJSONEvents(cmd.OutOrStdout(), a)
	}
	p, err := proxy.New(proxy.Config{
		Mode:        mode,
		TLS:         tlsCfg,
		Confirm:     confirm,
		ClientTLS:   clientTLS,
		Target:      f.target,
		DialTimeout: f.dialTimeout,
		IdleTimeout: f.idleTimeout,
		Limits: server.Limits{
			MaxConns:         f.maxConns,
			MaxHandshakes:    f.maxHandshakes,
			MaxConnsPerIP:    perIPLimit(f.maxPerIP),
			HandshakeTimeout: f.handshakeTimeout,
			GracePeriod:      f.grace,
		},
		Log:     a.log,
		OnEvent: onEvent,
		Metrics: m,
		Recheck: recheck,
	})
	if err != nil {
		return usageError{err}
	}
	var ln net.Listener
	if path, ok := strings.CutPrefix(f.listen, "unix:"); ok {
		if ln, err = proxy.ListenUnix(ctx, path, a.log); err != nil {
			return err
		}
	} else {
		addr := listenAddr(f.listen)
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("proxy: cannot listen on %q: address already in use (pick another --listen)", addr)
			}
			return fmt.Errorf("proxy: cannot listen on %q: %w", addr, err)
		}
	}
	logged := []any{"addr", ln.Addr().String(), "target", f.target, "mutual_tls", mode == proxy.ClientMode && cert != nil || mode == proxy.ServerMode && vs != nil}
	if m != nil {
		stop, addr, err := serveMetrics(f.metrics, m)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
		logged = append(logged, "metrics", "http://"+addr+"/metrics")
	}
	stop := keepCurrent(ctx, hup, cert, f.watch, a)
	defer stop()
	a.log.Info("listening", logged...)
	if err := p.Serve(ctx, ln); err != nil {
		return err
	}
	a.log.Info("proxy stopped")
	if err := lost(); err != nil {
		return fmt.Errorf("proxy: --json events were lost: %w", &stdoutFailed{err})
	}
	return nil
}

// verifierNames are the names of --verifier specs, for metric labels.
func verifierNames(specs []string) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i], _, _ = strings.Cut(s, ":")
	}
	return out
}

// What --metrics's HTTP server holds for its clients: a scraper needs one
// connection for a moment, and the server runs in the proxy's process,
// outside the proxy's own limits.
const (
	metricsMaxConns = 16
	metricsTimeout  = 30 * time.Second
)

// serveMetrics serves m on addr (a bare port on loopback, as --listen)
// until stop is called, and returns the address it listens on (addr's
// port may be 0).
func serveMetrics(addr string, m *proxy.Metrics) (stop func(), listening string, err error) {
	ln, err := net.Listen("tcp", listenAddr(addr))
	if err != nil {
		return nil, "", fmt.Errorf("proxy: --metrics %q: %w", addr, err)
	}
	return serveMetricsOn(ln, m, metricsMaxConns, metricsTimeout), ln.Addr().String(), nil
}

// serveMetricsOn serves m on ln to at most maxConns connections at once,
// each request read and answered within timeout, and a connection kept
// alive between requests for timeout at most.
func serveMetricsOn(ln net.Listener, m *proxy.Metrics, maxConns int, timeout time.Duration) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: timeout,
		ReadTimeout:       timeout,
		WriteTimeout:      timeout,
		IdleTimeout:       timeout,
	}
	go srv.Serve(netutil.LimitListener(ln, maxConns))
	return func() { srv.Close() }
}

// proxyJSONEvent is the --json form of a proxy.Event.
type proxyJSONEvent struct {
	Time       string `json:"time"`
	Event      string `json:"event"`
	Conn       uint64 `json:"conn"`
	Remote     string `json:"remote"`
	By         string `json:"by,omitempty"`
	Reason     string `json:"reason,omitempty"`
	PeerSHA256 string `json:"peer_sha256,omitempty"`
	PeerSPKI   string `json:"peer_spki,omitempty"`
	ToTarget   *int64 `json:"bytes_to_target,omitempty"`
	FromTarget *int64 `json:"bytes_from_target,omitempty"`
	DurationMS *int64 `json:"duration_ms,omitempty"`
}

// proxyJSONEvents writes each event to w as one JSON line, until a write
// fails (a full disk, a reader gone): it then warns once, writes nothing
// more (a reader must not take what follows a gap for the whole story),
// and lost returns that write's error, for the proxy to exit 1 with once
// it stopped. The proxy itself goes on: its connections are not the
// events' reader's.
func proxyJSONEvents(w io.Writer, a *app) (onEvent func(proxy.Event), lost func() error) {
	var (
		mu     sync.Mutex
		failed error
	)
	lost = func() error {
		mu.Lock()
		defer mu.Unlock()
		return failed
	}
	return func(e proxy.Event) {
		mu.Lock()
		defer mu.Unlock()
		if failed != nil {
			return
		}
		j := proxyJSONEvent{
			Time:       e.Time.UTC().Format(time.RFC3339Nano),
			Event:      string(e.Kind),
			Conn:       e.Conn,
			Remote:     e.Remote,
			By:         string(e.By),
			Reason:     e.Reason,
			PeerSHA256: e.PeerSHA256,
			PeerSPKI:   e.PeerSPKI,
		}
		if e.Kind == proxy.EventClosed {
			ms := e.Duration.Milliseconds()
			j.ToTarget, j.FromTarget, j.DurationMS = &e.ToTarget, &e.FromTarget, &ms
		}
		b, err := json.Marshal(j)
		if err != nil {
			return
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			failed = err
			a.log.Error("cannot write to stdout: --json events are lost from this one on; proxying goes on, and the proxy will exit 1", "event", j.Event, "conn", j.Conn, "error", err)
		}
	}, lost
}
