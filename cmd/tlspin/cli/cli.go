// Package cli is the tlspin command tree. main calls Run; tests call Run or
// New in process. Nothing here is package-level mutable state: every flag
// lives in a struct made per invocation.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/internal/client"
	"github.com/tlspin/tlspin/internal/launch"
	"github.com/tlspin/tlspin/internal/printable"
	"github.com/tlspin/tlspin/internal/server"
)

// Exit codes. Errors are classified by type, never by their text (which
// may come from a plugin or a peer).
const (
	ExitOK       = 0
	ExitFailure  = 1
	ExitUsage    = 2
	ExitRejected = 3
	// ExitVerifierFailed: a verifier returned an error or no verdict,
	// crashed, timed out or answered garbage, so the peer was rejected to
	// fail closed.
	ExitVerifierFailed = 4
	// ExitResetAfterSend: send wrote the whole message and then the
	// server reset the connection, so the reply (if any) was lost; the
	// message may have arrived, and sending it again may deliver it
	// twice.
	ExitResetAfterSend = 5
)

// interrupted is the cause of a command's context ended by a signal. A
// command that a signal stopped before it finished exits 128 plus the
// signal's number, as a shell reports it: 130 for SIGINT, 143 for
// SIGTERM. serve and proxy stop cleanly on either and exit 0.
type interrupted struct{ sig os.Signal }

func (e interrupted) Error() string { return "interrupted (" + signalName(e.sig) + ")" }

// code is the exit code of a command the signal stopped.
func (e interrupted) code() int {
	if s, ok := e.sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return ExitFailure
}

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// Env is what a command may touch of the outside world.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment (os.Getenv by default).
	Getenv func(string) string
	// Self is the tlspin executable, re-executed to run built-in
	// verifiers as separate processes (os.Executable by default).
	Self string
}

// globals are the persistent flags.
type globals struct {
	logLevel      string
	pluginDirs    []string
	pluginSHA256  []string
	checksumFile  string
	pluginEnv     []string
	verifyTimeout time.Duration
	startTimeout  time.Duration
}

// app is one invocation: the env, the flags and the logger.
type app struct {
	env Env
	g   globals
	log hclog.Logger
	// started is set once cobra has parsed the command line, found the
	// command and validated its arguments: an error before that is a
	// usage error (unknown command or flag, bad flag value, wrong number
	// of arguments), whatever cobra's wording.
	started bool
}

// usageError marks errors caused by how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// badInput marks an error about a file named on the command line to be
// read (a certificate, a key, a reference): it cannot be read, or does
// not hold what its flag takes. Either is how tlspin was called, a usage
// error (exit 2), in every command.
func badInput(err error) error { return usageError{err} }

// commandLineError is a usage error found before the command ran (cobra's
// unknown command or flag, bad flag value, wrong number of arguments).
// Its text is cobra's and the command line's. cobra's unknown command
// quotes the word it did not know (%q) and lays out its suggestions
// ("Did you mean this?") on lines of their own: that one is shown with its
// newlines and tabs. Every other is escaped, since pflag quotes nothing
// ("unknown flag: --x"), and a value a script passes (a message that
// starts with "-") could carry a line that reads as tlspin's own.
type commandLineError struct{ err error }

// keepsLayout reports whether e's newlines and tabs are cobra's or
// tlspin's own: cobra's unknown command, or a laidOut error.
func (e commandLineError) keepsLayout() bool {
	var lo laidOut
	return strings.HasPrefix(e.err.Error(), "unknown command \"") || errors.As(e.err, &lo)
}

// laidOut is a usage error laid out on several lines whose text is
// tlspin's own, but for numbers (a command's argument count and usage).
type laidOut struct{ usageError }

func (e laidOut) Unwrap() error { return e.usageError }

func (e commandLineError) Error() string { return e.err.Error() }
func (e commandLineError) Unwrap() error { return usageError(e) }

// Run runs tlspin with args (without the program name) and returns the exit
// code. SIGINT and SIGTERM cancel the command's context, so that every
// command stops its plugins and returns; a second signal ends it at once.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// tlspin serves its own built-in verifiers when re-executed as one.
	tlspin.ServeBuiltin()
	keepPluginsOut()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case s := <-sigs:
			cancel(interrupted{s})
		case <-finished:
			return
		}
		// A second signal ends tlspin at once, whatever the first left
		// to wait for (serve's --grace); plugins then die by parent-death
		// signal. Not by restoring the default action: a tlspin started
		// with SIGINT ignored (a script's background job, nohup) would
		// get "ignore" back, and wait.
		select {
		case s := <-sigs:
			fmt.Fprintf(stderr, "tlspin: interrupted again (%s): exiting at once\n", signalName(s))
			os.Exit(interrupted{s}.code())
		case <-finished:
		}
	}()
	return RunContext(ctx, Env{Stdin: stdin, Stdout: stdout, Stderr: stderr}, args)
}

// RunContext is Run with an explicit context and environment.
func RunContext(ctx context.Context, env Env, args []string) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	stdout := &checkedWriter{w: env.Stdout}
	env.Stdout = stdout
	a := &app{env: env}
	root := a.command()
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err != nil && !a.started {
		err = commandLineError{err}
	}
	if err == nil {
		err = stdout.Err()
	}
	var (
		in        interrupted
		lost      *stdoutFailed
		unprinted *server.OutputError // serve's stdout
	)
	outputFailed := errors.As(err, &lost) || errors.As(err, &unprinted)
	if err != nil && !outputFailed && errors.As(context.Cause(ctx), &in) {
		// What the command was doing ends in "context canceled": the
		// signal is the news.
		fmt.Fprintf(env.Stderr, "tlspin: %s\n", in)
		return in.code()
	}
	code := ExitCode(err)
	if err != nil {
		fmt.Fprintf(env.Stderr, "tlspin: %s\n", strings.TrimPrefix(explain(err), "tlspin: "))
	}
	return code
}

// checkedWriter keeps the first error of the writes to w: a command whose
// output was lost (stdout on a full disk) must not exit 0, and most
// commands print their result without looking at each write's error.
type checkedWriter struct {
	w   io.Writer
	mu  sync.Mutex
	err error
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
	return n, err
}

// Err is the first write's error, if any, saying it was stdout's.
func (c *checkedWriter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return &stdoutFailed{c.err}
	}
	return nil
}

// stdoutFailed is a write to stdout that failed: what the command printed
// was lost. It is the news (exit 1) even when a signal then stopped the
// command, which would have exited 0 (serve, proxy) or 128+N and hidden it;
// so is serve's server.OutputError.
type stdoutFailed struct{ err error }

func (e *stdoutFailed) Error() string { return "cannot write to stdout: " + e.err.Error() }
func (e *stdoutFailed) Unwrap() error { return e.err }

// catchSIGPIPE makes a write to a stdout whose reader is gone (| head -1
// done) fail with EPIPE, as any failed write does, for the commands that
// print as they go on serving (serve, proxy --json): unless caught, the Go
// runtime ends the process by SIGPIPE (exit 141 in a shell), every
// connection cut and nothing said. release gives SIGPIPE back.
func catchSIGPIPE() (release func()) {
	c := make(chan os.Signal, 1) // never read: the write's EPIPE is the news
	signal.Notify(c, syscall.SIGPIPE)
	return func() { signal.Stop(c) }
}

// ExitCode classifies err: nil is ExitOK; a usage error (how tlspin was
// called, or a verifier's option or name) ExitUsage; a peer rejected by a
// verdict ExitRejected; a peer rejected because a verifier failed
// ExitVerifierFailed; a server that reset the connection after the
// whole message was sent ExitResetAfterSend; anything else ExitFailure.
func ExitCode(err error) int {
	var (
		ue usageError
		pe *pintls.RejectError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue), errors.Is(err, tlspin.ErrBadConfig):
		return ExitUsage
	case errors.Is(err, tlspin.ErrVerifierFailed):
		return ExitVerifierFailed
	case errors.Is(err, tlspin.ErrRejected):
		return ExitRejected
	case errors.Is(err, client.ErrResetAfterSend):
		return ExitResetAfterSend
	case errors.As(err, &pe):
		// A rejection made outside the library: failing closed on an
		// error, or a verdict.
		if pe.Err != nil {
			return ExitVerifierFailed
		}
		return ExitRejected
	}
	return ExitFailure
}

// explain is err's message with what a command-line user can do about it:
// the library's errors speak of the library, the flags are named here.
func explain(err error) string {
	if cle, ok := err.(commandLineError); ok && cle.keepsLayout() {
		return escapeKeepLayout(strings.TrimRight(err.Error(), "\n"))
	}
	// The message may quote a peer's names or a plugin's reason.
	msg := printable.Escape(err.Error())
	var rej *tlspin.RejectionError
	var reset *client.ResetAfterSendError
	switch {
	case errors.As(err, &reset):
		msg += "\n  (the message may have arrived: sending it again may deliver it twice; for a server that answers\n  and closes without reading to the end, "
		if reset.HalfClose == client.HalfCloseAuto {
			msg += "--half-close never keeps our side open until it has: auto closed it when the server had been quiet for a moment)"
		} else {
			msg += "--half-close auto or never keeps our side open until it has)"
		}
	case errors.Is(err, launch.ErrUnusedPin):
		msg += " (each NAME of --plugin-sha256 NAME=HEX must be a --verifier)"
	case errors.As(err, &rej) && rej.PeerSHA256 != "":
		msg += fmt.Sprintf("\n  the %s's certificate: sha256 %s, spki %s", rej.Peer, rej.PeerSHA256, rej.PeerSPKI)
		if rej.Failed() {
			msg += "\n  (a verifier failed, so the peer was rejected to fail closed; --log-level debug shows more)"
		}
	}
	return msg
}

// escapeKeepLayout is printable.Escape but for newlines and tabs, which
// are kept: for text that is not a peer's or a plugin's, laid out in lines.
func escapeKeepLayout(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		cells := strings.Split(l, "\t")
		for j, c := range cells {
			cells[j] = printable.Escape(c)
		}
		lines[i] = strings.Join(cells, "\t")
	}
	return strings.Join(lines, "\n")
}

// command builds the command tree.
func (a *app) command() *cobra.Command {
	root := &cobra.Command{
		Use:   "tlspin",
		Short: "TLS whose trust is a pin, decided by verifier plugins",
		Long: `tlspin connects two programs over TLS with a self-signed certificate and
accepts exactly the peer you expect. Every peer-certificate decision is made
by a verifier plugin running as a separate process (md5pin, sha256pin,
spkipin, allowlist, tofu, ca, or your own tlspin-verifier-NAME).

Data goes to stdout, logs to stderr. Exit codes: 0 ok, 1 failure, 2 usage
(a bad flag or argument, or a file named on the command line that cannot be
read or does not hold what its flag takes), 3 peer rejected by a verifier's verdict, 4 a verifier failed (returned an
error or no verdict, crashed, timed out or answered garbage), so the peer was
rejected to fail closed; 5 send wrote the whole message, then the server
reset the connection (the reply was lost; do not resend blindly); 130 or 143
a command stopped by SIGINT or SIGTERM before it finished (serve and proxy
stop cleanly and exit 0).`,
		Example: `  tlspin demo                     # the recipe, end to end, on loopback
  tlspin cert --out cert.pem && tlspin serve --cert cert.pem
  tlspin send --verifier spkipin --pin "$(tlspin fingerprint --format curl cert.pem)" localhost:8081 hello`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.started = true
			// cobra checks these after this hook; checked here, a missing
			// or conflicting flag is a usage error by type.
			if err := cmd.ValidateRequiredFlags(); err != nil {
				return usageError{err}
			}
			if err := cmd.ValidateFlagGroups(); err != nil {
				return usageError{err}
			}
			if err := checkDurations(cmd.Flags()); err != nil {
				return err
			}
			if err := checkCounts(cmd.Flags()); err != nil {
				return err
			}
			return a.setup()
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.g.logLevel, "log-level", "info", "log level on stderr: trace, debug, info, warn, error, off")
	pf.StringArrayVar(&a.g.pluginDirs, "plugin-dir", nil, "directory searched first for tlspin-verifier-NAME executables (repeatable)")
	pf.DurationVar(&a.g.verifyTimeout, "verify-timeout", 5*time.Second, "longest a verifier may take to decide on one peer; then the peer is rejected")
	pf.DurationVar(&a.g.startTimeout, "plugin-start-timeout", 10*time.Second, "longest a verifier plugin may take to start")
	pf.StringArrayVar(&a.g.pluginSHA256, "plugin-sha256", nil, "`NAME=HEX`: refuse to run verifier NAME unless its executable has this SHA-256 (repeatable; for a built-in, the file that runs it: tlspin-builtins next to tlspin if there is one, else the tlspin binary; tlspin verifiers NAME shows which)")
	pf.StringArrayVar(&a.g.pluginEnv, "plugin-env", nil, "pass the variable KEY of tlspin's environment to plugins (repeatable; for debugging: PYTHONPATH, NODE_OPTIONS); by default plugins get only PATH, HOME, TMPDIR, TLSPIN_LOG_LEVEL and GOMAXPROCS=1 (which --plugin-env GOMAXPROCS replaces), besides go-plugin's own variables; naming one tlspin sets itself (those, go-plugin's PLUGIN variables, TLSPIN_VERIFIER_PLUGIN, TLSPIN_PLUGIN_CHANNEL_FD) is a usage error")
	pf.StringVar(&a.g.checksumFile, "plugin-checksums", "", "file of plugin SHA-256 pins as sha256sum prints them (HEX  tlspin-verifier-NAME); a regular file, refused if another user may have written it or may replace it, as a pins file is")
	root.AddCommand(
		a.verifierServeCommand(),
	)
	for _, c := range a.extraCommands() {
		root.AddCommand(c)
	}
	a.finishTree(root)
	return root
}

// checkDurations refuses a duration flag given a negative value, or zero
// unless its help says what 0 means ("(0: never)"): elsewhere zero would
// silently mean the default, or no time at all.
func checkDurations(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || !f.Changed || f.Value.Type() != "duration" {
			return
		}
		d, perr := time.ParseDuration(f.Value.String())
		switch {
		case perr != nil:
		case d < 0:
			err = usagef("--%s %s: must not be negative", f.Name, f.Value)
		case d == 0 && !strings.Contains(f.Usage, "(0:"):
			err = usagef("--%s 0: must be more than zero", f.Name)
		}
	})
	return err
}

// checkCounts refuses an integer flag (a cap, a count, a size) given a
// negative value, or zero unless its help says what 0 means ("(0: no
// cap)", "(default 0: ...)"): elsewhere zero silently meant the default.
func checkCounts(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || !f.Changed || f.Value.Type() != "int" {
			return
		}
		n, perr := strconv.Atoi(f.Value.String())
		switch {
		case perr != nil:
		case n < 0:
			err = usagef("--%s %d: must not be negative", f.Name, n)
		case n == 0 && !strings.Contains(f.Usage, "(0:") && !strings.Contains(f.Usage, "(default 0:"):
			err = usagef("--%s 0: want at least 1", f.Name)
		}
	})
	return err
}

// setup makes the logger once the flags are parsed.
func (a *app) setup() error {
	lvl := hclog.LevelFromString(a.g.logLevel)
	if lvl == hclog.NoLevel {
		return usagef("unknown --log-level %q (want trace, debug, info, warn, error or off)", a.g.logLevel)
	}
	if _, err := (&launch.Config{PassEnv: a.g.pluginEnv}).PluginEnv(); err != nil {
		return usageError{fmt.Errorf("--plugin-env: %w", err)}
	}
	a.log = hclog.New(&hclog.LoggerOptions{
		Name:   "tlspin",
		Level:  lvl,
		Output: a.env.Stderr,
	})
	for _, d := range a.g.pluginDirs {
		// A typo would otherwise go unnoticed: the search goes on.
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			a.log.Warn("--plugin-dir is not a directory; searching on without it", "dir", d)
		}
	}
	return nil
}
