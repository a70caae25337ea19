package conformance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/peercred"
	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/bench"
	"github.com/tlspin/tlspin/internal/compare"
	"github.com/tlspin/tlspin/internal/deadline"
)

// Item names, in the order they are checked and reported.
const (
	ItemHandshake        = "handshake"
	ItemProtocolVersion  = "protocol-version"
	ItemChannelSocket    = "channel-socket"
	ItemChannelConnect   = "channel-connect"
	ItemDescribe         = "describe"
	ItemDescribeName     = "describe-name"
	ItemConfigureUnknown = "configure-unknown"
	ItemConfigureMissing = "configure-required"
	ItemConfigureRepeat  = "configure-repeated"
	ItemConfigureBad     = "configure-bad-value"
	ItemConfigure        = "configure"
	ItemVerifyScenarios  = "verify-scenarios"
	ItemVerifyEmpty      = "verify-empty-chain"
	ItemVerifyGarbage    = "verify-garbage"
	ItemVerifyErrors     = "verify-errors"
	ItemLatency          = "latency"
	ItemShutdown         = "shutdown"
	ItemStdout           = "stdout"
)

// Items lists every item with what it requires, in order; `tlspin
// verifiers check --help` prints it.
var Items = []struct{ Name, Requires string }{
	{ItemHandshake, "the first stdout line is go-plugin's CORE|APP|NETWORK|ADDRESS|grpc|CERT, core protocol 1, within the start timeout"},
	{ItemProtocolVersion, "APP is a verifier protocol version the host offered in PLUGIN_PROTOCOL_VERSIONS"},
	{ItemChannelSocket, "ADDRESS is a unix socket in a directory no other user can enter (PLUGIN_UNIX_SOCKET_DIR, or one of the plugin's own, mode 0700), served by the plugin's own process or process group (the kernel's SO_PEERCRED), as the host requires"},
	{ItemChannelConnect, "plain gRPC on the socket (the host sends no PLUGIN_CLIENT_CERT on Linux) works and Describe answers"},
	{ItemDescribe, `Describe gives a name, a summary, and options with unique names (none with "=") and descriptions`},
	{ItemDescribeName, "Describe's name equals NAME (the file is tlspin-verifier-NAME)"},
	{ItemConfigureUnknown, "Configure refuses an unknown option with INVALID_ARGUMENT and a message naming it"},
	{ItemConfigureMissing, "... and each missing required option"},
	{ItemConfigureRepeat, "... and a repeated value of an option that is not repeatable"},
	{ItemConfigureBad, "... and each bad value given with --bad KEY=VALUE"},
	{ItemConfigure, "Configure accepts the working options given with --opt"},
	{ItemVerifyScenarios, "Verify answers every scenario tlspin compare runs (renewed, rekeyed, look-alike, forged chain, stolen certificate without its key, expired...), both sides, with a verdict at least once; a rejection says why"},
	{ItemVerifyEmpty, "Verify of an empty chain answers, and does not allow"},
	{ItemVerifyGarbage, "Verify of garbage DER answers without crashing, and does not allow it as a leaf"},
	{ItemVerifyErrors, "every error Verify returned is a gRPC status (the host then rejects the peer as a verifier that failed), and the process is still running"},
	{ItemLatency, "p50 and p90 of Verify through gRPC (reported)"},
	{ItemShutdown, "after plugin.GRPCController/Shutdown the process exits, status 0, within 1s"},
	{ItemStdout, "nothing on stdout after the handshake line (go-plugin's host drops it silently)"},
}

// Status is an item's outcome.
type Status string

// Statuses.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	// Skip means the item does not apply (no required option, no --bad).
	Skip Status = "skip"
)

// Target is the plugin to check.
type Target struct {
	// Name is the name the host knows the plugin by: NAME of its file
	// tlspin-verifier-NAME, or a built-in's name.
	Name string
	Path string
	Args []string
	// Env is the plugin's environment before go-plugin's variables.
	Env []string
	// Options is a configuration the plugin must accept; Verify runs
	// under it.
	Options verify.Options
	// Bad are values Configure must refuse, each tried alone on top of
	// Options.
	Bad verify.Options
	// SHA256, if set, pins Path's content: a file with another sum is
	// never run (Run fails with an error wrapping host.ErrChecksum), and
	// the open file hashed is the one executed, as the host runs a pinned
	// plugin.
	SHA256 []byte
}

// Config tunes a run; zero values get defaults.
type Config struct {
	// StartTimeout bounds the handshake (default 10s).
	StartTimeout time.Duration
	// CallTimeout bounds one call (default 5s, the host's verify timeout).
	CallTimeout time.Duration
	// Samples is how many Verify calls the latency is measured on
	// (default 200).
	Samples int
}

func (c *Config) defaults() {
	if c.StartTimeout <= 0 {
		c.StartTimeout = 10 * time.Second
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 5 * time.Second
	}
	if c.Samples <= 0 {
		c.Samples = 200
	}
}

// ShutdownLimit is how soon a plugin must exit after Shutdown.
const ShutdownLimit = time.Second

// Result is one item's outcome.
type Result struct {
	Item   string `json:"item"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
}

// Report is a whole run.
type Report struct {
	Name    string   `json:"name"`
	Path    string   `json:"path"`
	Results []Result `json:"results"`
	// P50 and P90 are Verify latencies, zero when not measured.
	P50 time.Duration `json:"-"`
	P90 time.Duration `json:"-"`
}

// Failed returns how many items failed.
func (r *Report) Failed() int {
	n := 0
	for _, x := range r.Results {
		if x.Status == Fail {
			n++
		}
	}
	return n
}

// Result returns the outcome of item, if it was reported.
func (r *Report) Result(item string) (Result, bool) {
	for _, x := range r.Results {
		if x.Item == item {
			return x, true
		}
	}
	return Result{}, false
}

// Run checks t and reports on every item. An error means the run itself
// could not be made (ctx cancelled, scenarios not generated); everything
// the plugin does wrong is a failed item.
func Run(ctx context.Context, t Target, cfg Config) (*Report, error) {
	cfg.defaults()
	c := &checker{t: t, cfg: cfg, rep: &Report{Name: t.Name, Path: t.Path}}
	if err := c.run(ctx); err != nil {
		return nil, err
	}
	// Interrupted: the failures are ours, not the plugin's.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	return c.rep, nil
}

// checker is one run.
type checker struct {
	t    Target
	cfg  Config
	rep  *Report
	p    *process
	conn *grpc.ClientConn
	v    *rpc.Client
	desc *verify.Description
	// errs are the errors Verify returned; broken the calls that broke.
	errs   []string
	broken []string
	// hung is the first call that got no answer in time from a plugin
	// still running, or "": the calls after it are not made.
	hung string
}

func (c *checker) add(item string, s Status, format string, a ...any) {
	c.rep.Results = append(c.rep.Results, Result{Item: item, Status: s, Detail: fmt.Sprintf(format, a...)})
}

// block fails the items from one to another (inclusive), saying why.
func (c *checker) block(from, to, why string) {
	on := false
	for _, it := range Items {
		if it.Name == from {
			on = true
		}
		if on {
			c.add(it.Name, Fail, "not checked: %s", why)
		}
		if it.Name == to {
			return
		}
	}
}

func (c *checker) run(ctx context.Context) error {
	p, line, err := start(ctx, c.t, c.cfg.StartTimeout)
	if err != nil {
		// A plugin that is not the one pinned is not checked at all: it
		// never ran, and there is nothing of it to report on.
		if ctx.Err() != nil || errors.Is(err, host.ErrChecksum) {
			return err
		}
		c.add(ItemHandshake, Fail, "%v", err)
		c.block(ItemProtocolVersion, ItemStdout, "no handshake")
		return nil
	}
	c.p = p
	defer c.checkStdout()
	hs, err := parseHandshake(line)
	if err != nil {
		c.add(ItemHandshake, Fail, "%v", err)
		c.block(ItemProtocolVersion, ItemShutdown, "no valid handshake line")
		return nil
	}
	c.add(ItemHandshake, Pass, "%s %s, protocol %s", hs.network, hs.address, hs.protocol)
	if !slices.Contains(rpc.SupportedVersions(), hs.app) {
		c.add(ItemProtocolVersion, Fail, "version %d; the host offered %s", hs.app, joinInts(rpc.SupportedVersions()))
		c.block(ItemChannelSocket, ItemShutdown, "protocol version not spoken by the host")
		return nil
	}
	c.add(ItemProtocolVersion, Pass, "version %d", hs.app)
	if !c.checkChannel(ctx, hs) {
		c.block(ItemDescribe, ItemShutdown, "no connection")
		return nil
	}
	defer c.conn.Close()
	c.checkDescribe()
	if c.checkConfigure(ctx) {
		if err := c.checkVerify(ctx); err != nil {
			return err
		}
	} else {
		c.block(ItemVerifyScenarios, ItemLatency, "not configured")
	}
	if !c.p.alive() {
		c.block(ItemShutdown, ItemShutdown, "the process died")
		return nil
	}
	c.checkShutdown(ctx)
	return nil
}

// dial makes a gRPC client connection to the plugin's address, as the
// host does: plain gRPC, the listening process checked by the kernel.
func (c *checker) dial(hs handshake) (*grpc.ClientConn, error) {
	pid := c.p.cmd.Process.Pid
	return grpc.NewClient("passthrough:///plugin", append(rpc.DialOptions(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, hs.network, hs.address)
		}),
		grpc.WithTransportCredentials(rpc.HostCredentials(func() int { return pid })))...)
}

func (c *checker) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.CallTimeout)
}

// checkChannel reports whether a connection was made.
func (c *checker) checkChannel(ctx context.Context, hs handshake) bool {
	if err := checkSocket(hs); err != nil {
		c.add(ItemChannelSocket, Fail, "%v", err)
		c.add(ItemChannelConnect, Fail, "not tried: the host would not connect")
		return false
	}
	if err := c.checkPeer(ctx, hs); err != nil {
		c.add(ItemChannelSocket, Fail, "%v", err)
		c.add(ItemChannelConnect, Fail, "not tried: the host refuses a socket served by another process")
		return false
	}
	c.add(ItemChannelSocket, Pass, "%s, served by the plugin's process group", hs.address)
	conn, err := c.dial(hs)
	if err == nil {
		c.conn, c.v = conn, rpc.NewClient(conn)
		cctx, cancel := c.call(ctx)
		c.desc, err = c.v.Describe(cctx)
		cancel()
		if err != nil {
			conn.Close()
		}
	}
	if err != nil {
		c.add(ItemChannelConnect, Fail, "Describe over plain gRPC: %v", c.p.explain(err))
		return false
	}
	c.add(ItemChannelConnect, Pass, "Describe answered over plain gRPC")
	go c.p.watchStdio(conn)
	return true
}

// checkPeer connects to the plugin's socket once, as the host does, and
// asks the kernel who serves it: the plugin's process group, as its user
// (peercred.CheckHost). gRPC would report the same refusal only as text.
func (c *checker) checkPeer(ctx context.Context, hs handshake) error {
	if !peercred.Supported {
		return nil
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(cctx, hs.network, hs.address)
	if err != nil {
		return fmt.Errorf("cannot connect to %s: %w", hs.address, err)
	}
	defer conn.Close()
	cred, err := peercred.Of(conn)
	if err != nil {
		return err
	}
	return peercred.CheckHost(cred, c.p.cmd.Process.Pid)
}

// checkSocket checks that the plugin's address is a unix socket that no
// other user can reach.
func checkSocket(hs handshake) error {
	if hs.network != "unix" {
		return fmt.Errorf("network %s: the host accepts only a unix socket, whose peer the kernel can name", hs.network)
	}
	return peercred.PrivateDir(hs.address)
}

func (c *checker) checkDescribe() {
	d := c.desc
	var probs []string
	if strings.TrimSpace(d.Summary) == "" {
		probs = append(probs, "no summary")
	}
	seen := map[string]bool{}
	for i, o := range d.Options {
		switch {
		case o.Name == "":
			probs = append(probs, fmt.Sprintf("option %d has no name", i))
		case seen[o.Name]:
			probs = append(probs, fmt.Sprintf("option %q declared twice", o.Name))
		case strings.Contains(o.Name, "="):
			probs = append(probs, fmt.Sprintf("option %q cannot be given: a user writes KEY=VALUE, and the key ends at the first \"=\"", o.Name))
		case strings.TrimSpace(o.Description) == "":
			probs = append(probs, fmt.Sprintf("option %q has no description", o.Name))
		}
		seen[o.Name] = true
	}
	if len(probs) > 0 {
		c.add(ItemDescribe, Fail, "%s", strings.Join(probs, "; "))
	} else {
		c.add(ItemDescribe, Pass, "name %q, version %q, %d options", d.Name, d.Version, len(d.Options))
	}
	if d.Name != c.t.Name {
		c.add(ItemDescribeName, Fail, "Describe says %q, the file says %q: the host knows it as %q", d.Name, c.t.Name, c.t.Name)
	} else {
		c.add(ItemDescribeName, Pass, "%q", d.Name)
	}
}

// unknownOption is an option name no verifier declares.
const unknownOption = "tlspin-check-no-such-option"

// checkConfigure reports whether the working configuration was accepted.
func (c *checker) checkConfigure(ctx context.Context) bool {
	with := func(k string, vals ...string) verify.Options {
		o := maps.Clone(c.t.Options)
		if o == nil {
			o = verify.Options{}
		}
		if vals == nil {
			delete(o, k)
		} else {
			o[k] = vals
		}
		return o
	}
	// The refusals first: a plugin that takes a bad configuration after
	// a good one could be left with the bad one.
	c.refuse(ctx, ItemConfigureUnknown, unknownOption, with(unknownOption, "1"))

	var required []string
	repeat := ""
	for _, o := range c.desc.Options {
		if o.Required {
			required = append(required, o.Name)
		}
		if !o.Repeated && repeat == "" {
			repeat = o.Name
		}
	}
	if len(required) == 0 {
		c.add(ItemConfigureMissing, Skip, "declares no required option")
	} else {
		c.refuseEach(ctx, ItemConfigureMissing, required, func(k string) verify.Options { return with(k) }, func(k string) string { return "a configuration without " + k })
	}
	if repeat == "" {
		c.add(ItemConfigureRepeat, Skip, "declares no option that is not repeatable")
	} else {
		v := "x"
		if vs := c.t.Options[repeat]; len(vs) > 0 {
			v = vs[0]
		}
		c.refuse(ctx, ItemConfigureRepeat, repeat, with(repeat, v, v))
	}
	if len(c.t.Bad) == 0 {
		c.add(ItemConfigureBad, Skip, "no bad value given (--bad KEY=VALUE)")
	} else {
		c.refuseBad(ctx, with)
	}

	cctx, cancel := c.call(ctx)
	defer cancel()
	if _, err := c.v.Configure(cctx, &verify.ConfigureRequest{Options: c.t.Options}); err != nil {
		c.add(ItemConfigure, Fail, "refused %s: %v (give a working configuration with --opt KEY=VALUE)", showOptions(c.t.Options), err)
		return false
	}
	c.add(ItemConfigure, Pass, "accepted %s", showOptions(c.t.Options))
	return true
}

// refuseEach runs refuse for every key and reports once; label says
// what was tried for a key.
func (c *checker) refuseEach(ctx context.Context, item string, keys []string, opts func(string) verify.Options, label func(string) string) {
	var bad, tried []string
	for _, k := range keys {
		if why := c.refusal(ctx, k, opts(k)); why != "" {
			bad = append(bad, why)
		}
		tried = append(tried, label(k))
	}
	if len(bad) > 0 {
		c.add(item, Fail, "%s", strings.Join(bad, "; "))
		return
	}
	c.add(item, Pass, "refused %s with INVALID_ARGUMENT naming the option", strings.Join(tried, ", "))
}

// refuseBad configures each bad value alone, on top of the working
// configuration (two values of one key together would be refused for the
// repeat, whatever the values), and reports once, quoting each value so
// that one can tell them apart.
func (c *checker) refuseBad(ctx context.Context, with func(string, ...string) verify.Options) {
	var bad, tried []string
	for _, k := range slices.Sorted(maps.Keys(c.t.Bad)) {
		for _, v := range c.t.Bad[k] {
			if why := c.refusal(ctx, k, with(k, v)); why != "" {
				bad = append(bad, why)
			}
			tried = append(tried, strconv.Quote(k+"="+v))
		}
	}
	if len(bad) > 0 {
		c.add(ItemConfigureBad, Fail, "%s", strings.Join(bad, "; "))
		return
	}
	c.add(ItemConfigureBad, Pass, "refused each alone with INVALID_ARGUMENT naming the option: %s", strings.Join(tried, ", "))
}

func (c *checker) refuse(ctx context.Context, item, key string, opts verify.Options) {
	if why := c.refusal(ctx, key, opts); why != "" {
		c.add(item, Fail, "%s", why)
		return
	}
	c.add(item, Pass, "refused %s with INVALID_ARGUMENT naming %q", showOptions(opts), key)
}

// refusal configures opts and says what is wrong with the answer, or ""
// when it is INVALID_ARGUMENT with a message naming key.
func (c *checker) refusal(ctx context.Context, key string, opts verify.Options) string {
	cctx, cancel := c.call(ctx)
	defer cancel()
	_, err := c.v.Configure(cctx, &verify.ConfigureRequest{Options: opts})
	var remote *rpc.RemoteError
	switch {
	case err == nil:
		return fmt.Sprintf("accepted %s", showOptions(opts))
	case !errors.As(err, &remote):
		return fmt.Sprintf("%s: %v", showOptions(opts), c.p.explain(err))
	case remote.Code != codes.InvalidArgument:
		return fmt.Sprintf("%s: answered %s, want INVALID_ARGUMENT (%q)", showOptions(opts), remote.Code, remote.Message)
	case !strings.Contains(remote.Message, key):
		return fmt.Sprintf("%s: message %q does not name %q", showOptions(opts), remote.Message, key)
	}
	return ""
}

func showOptions(o verify.Options) string {
	if len(o) == 0 {
		return "no options"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(o)) {
		for _, v := range o[k] {
			parts = append(parts, k+"="+v)
		}
		if len(o[k]) == 0 {
			parts = append(parts, k)
		}
	}
	return strings.Join(parts, ",")
}

// answer is one Verify call's outcome.
type answer struct {
	v *verify.Verdict
	// err is an error the plugin returned (a rejection).
	err error
	// broken says why the call broke (crash, hang, garbage), or "".
	broken string
}

func (a answer) allowed() bool { return a.broken == "" && a.err == nil && a.v.Allow }

// short says in a word or two what the plugin answered.
func (a answer) short() string {
	switch {
	case a.broken != "":
		return "BROKE"
	case a.err != nil:
		return "error"
	case a.v.Allow:
		return "allow"
	}
	return "reject"
}

// ask calls Verify and sorts the outcome as the host would. Once a call
// has hung, the others are not made, each broken at once: the host would
// have killed and restarted the plugin, and each would wait a whole call
// timeout, minutes of silence in all.
func (c *checker) ask(ctx context.Context, what string, req *verify.Request) answer {
	if c.hung != "" {
		return answer{broken: fmt.Sprintf("%s: not asked, since the plugin hangs (%s)", what, c.hung)}
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	v, err := c.v.Verify(cctx, req)
	var remote *rpc.RemoteError
	a := answer{v: v}
	timedOut := false
	switch {
	case err == nil:
	case errors.As(err, &remote):
		a.err = err
		c.errs = append(c.errs, fmt.Sprintf("%s: %s %q", what, remote.Code, remote.Message))
	case ctx.Err() == nil && deadline.Passed(cctx):
		a.broken = fmt.Sprintf("%s: no answer within %s", what, c.cfg.CallTimeout)
		timedOut = true
	default:
		a.broken = fmt.Sprintf("%s: %v", what, err)
	}
	// A broken call is most often a crash: give the process a moment to
	// be reaped, so that the report says so.
	if a.broken != "" && c.p.waitExit(time.Second) || !c.p.alive() {
		a.broken = fmt.Sprintf("%s: the process died (%v)", what, c.p.waitErr)
	} else if timedOut {
		c.hung = a.broken
	}
	if a.broken != "" {
		c.broken = append(c.broken, a.broken)
	}
	return a
}

func (c *checker) checkVerify(ctx context.Context) error {
	ref, err := compare.NewReference(certs.ECDSA)
	if err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	scenarios, _, err := compare.Scenarios(ref)
	if err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	var summary, probs []string
	verdicts := 0
scenarios:
	for _, side := range []verify.Side{verify.ClientVerifiesServer, verify.ServerVerifiesClient} {
		for _, s := range scenarios {
			if c.hung != "" {
				probs = append(probs, "the other scenarios not asked, since the plugin hangs")
				break scenarios
			}
			req := &verify.Request{PeerChain: s.Cert.Certificate, Side: side, RemoteAddr: "127.0.0.1:443", TLSVersion: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256}
			if side == verify.ClientVerifiesServer {
				req.ServerName = ref.ServerName
			}
			what := s.Name + " (" + side.String() + ")"
			a := c.ask(ctx, what, req)
			switch {
			case a.broken != "":
				probs = append(probs, a.broken)
			case a.err == nil && !a.v.Allow && strings.TrimSpace(a.v.Reason) == "":
				probs = append(probs, what+": rejected without a reason")
			}
			if a.broken == "" && a.err == nil {
				verdicts++
			}
			if side == verify.ClientVerifiesServer {
				summary = append(summary, s.Name+" "+a.short())
			}
		}
	}
	if verdicts == 0 && len(probs) == 0 && len(c.errs) > 0 {
		// Each answer alone is fine; all of them errors is a verifier
		// that never decides, so a host rejects every peer (exit 4).
		probs = append(probs, fmt.Sprintf("no verdict in %d scenarios: every answer was an error, e.g. %s; the host counts an error as a verifier that failed and rejects every peer", 2*len(scenarios), c.errs[0]))
	}
	if len(probs) > 0 {
		c.add(ItemVerifyScenarios, Fail, "%s", strings.Join(probs, "; "))
	} else {
		c.add(ItemVerifyScenarios, Pass, "%d scenarios, both sides: %s", len(scenarios), strings.Join(summary, ", "))
	}

	leaf := ref.Leaf.Certificate[0]
	empty := c.ask(ctx, "empty chain", &verify.Request{Side: verify.ClientVerifiesServer, ServerName: ref.ServerName})
	switch {
	case empty.broken != "":
		c.add(ItemVerifyEmpty, Fail, "%s", empty.broken)
	case empty.allowed():
		c.add(ItemVerifyEmpty, Fail, "allowed a peer that sent no certificate")
	default:
		c.add(ItemVerifyEmpty, Pass, "%s", empty.short())
	}

	garbage := []byte("\x30\x82\x01\x00tlspin conformance: not a certificate")
	var gprobs, gsum []string
	for _, g := range []struct {
		what     string
		chain    [][]byte
		mayAllow bool
	}{
		{"garbage leaf", [][]byte{garbage}, false},
		{"empty leaf", [][]byte{{}}, false},
		{"valid leaf, garbage intermediate", [][]byte{leaf, garbage}, true},
	} {
		a := c.ask(ctx, g.what, &verify.Request{PeerChain: g.chain, Side: verify.ClientVerifiesServer, ServerName: ref.ServerName})
		switch {
		case a.broken != "":
			gprobs = append(gprobs, a.broken)
		case a.allowed() && !g.mayAllow:
			gprobs = append(gprobs, g.what+": allowed")
		}
		gsum = append(gsum, g.what+" "+a.short())
	}
	if len(gprobs) > 0 {
		c.add(ItemVerifyGarbage, Fail, "%s", strings.Join(gprobs, "; "))
	} else {
		c.add(ItemVerifyGarbage, Pass, "%s", strings.Join(gsum, ", "))
	}

	switch {
	case len(c.broken) > 0:
		c.add(ItemVerifyErrors, Fail, "%d calls broke instead of answering: %s", len(c.broken), c.broken[0])
	case len(c.errs) == 0:
		c.add(ItemVerifyErrors, Pass, "no error returned (every answer a verdict); still running")
	default:
		c.add(ItemVerifyErrors, Pass, "%d errors, all gRPC statuses, e.g. %s; still running", len(c.errs), c.errs[0])
	}
	if !c.p.alive() {
		c.block(ItemLatency, ItemLatency, "the process died")
		return nil
	}
	c.checkLatency(ctx, &verify.Request{PeerChain: ref.Leaf.Certificate, Side: verify.ClientVerifiesServer, ServerName: ref.ServerName})
	return nil
}

func (c *checker) checkLatency(ctx context.Context, req *verify.Request) {
	d := make([]time.Duration, 0, c.cfg.Samples)
	for range c.cfg.Samples {
		t0 := time.Now()
		a := c.ask(ctx, "latency", req)
		if a.broken != "" {
			c.add(ItemLatency, Fail, "%s", a.broken)
			return
		}
		d = append(d, time.Since(t0))
	}
	slices.Sort(d)
	c.rep.P50, c.rep.P90 = bench.Quantile(d, 0.5), bench.Quantile(d, 0.9)
	c.add(ItemLatency, Pass, "p50 %s, p90 %s over %d calls", c.rep.P50.Round(time.Microsecond), c.rep.P90.Round(time.Microsecond), len(d))
}

// shutdownMethod is go-plugin's controller call that asks a plugin to exit.
const shutdownMethod = "/plugin.GRPCController/Shutdown"

func (c *checker) checkShutdown(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, ShutdownLimit)
	defer cancel()
	t0 := time.Now()
	err := c.conn.Invoke(cctx, shutdownMethod, &emptypb.Empty{}, &emptypb.Empty{})
	// go-plugin's host closes its connection right after the call.
	c.conn.Close()
	if status.Code(err) == codes.Unimplemented {
		c.add(ItemShutdown, Fail, "%s not implemented: the host kills the plugin after 0.5s and logs an error", shutdownMethod)
		return
	}
	if !c.p.waitExit(max(ShutdownLimit-time.Since(t0), 0)) {
		c.add(ItemShutdown, Fail, "still running %s after Shutdown (call: %v)", ShutdownLimit, err)
		return
	}
	took := time.Since(t0).Round(time.Millisecond)
	if c.p.waitErr != nil {
		c.add(ItemShutdown, Fail, "exited after %s, but with %v: the host logs that as an error", took, c.p.waitErr)
		return
	}
	c.add(ItemShutdown, Pass, "exited after %s", took)
}

func (c *checker) checkStdout() {
	if c.p.alive() {
		c.p.kill()
	} else {
		c.p.removeSockDir()
	}
	select {
	case <-c.p.stdoutDone:
	case <-time.After(time.Second):
		// A child of the plugin still holds stdout; kill below.
	}
	if n := c.p.after.Len(); n > 0 {
		c.add(ItemStdout, Fail, "%d bytes after the handshake line, starting %q: stdout is the host's channel, log to stderr", n, firstLine(c.p.after.String()))
		return
	}
	select {
	case <-c.p.stdioDone:
	case <-time.After(time.Second):
	}
	if n := c.p.stdio.Len(); n > 0 {
		c.add(ItemStdout, Fail, "%d bytes written to stdout after the handshake, starting %q: go-plugin carries them on its stdio stream and the host drops them; log to stderr", n, firstLine(c.p.stdio.String()))
		return
	}
	c.add(ItemStdout, Pass, "nothing after the handshake line")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}
