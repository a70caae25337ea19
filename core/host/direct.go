package host

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/direct"
	"github.com/tlspin/tlspin/core/plugproc"
	"github.com/tlspin/tlspin/core/verify"
)

// maxDirectConns caps the connections to one tlspin-builtins process:
// concurrent Verify calls beyond it wait for a free one.
const maxDirectConns = 8

// maxStdoutLine caps a line read from a plugin's stdout.
const maxStdoutLine = 4 << 10

// spawnDirect starts a built-in verifier of tlspin-builtins (spec.Direct,
// at an absolute spec.Path; exe is the pinned executable or nil) and asks
// it to describe itself, unless spec.Known says already. It does for the
// direct protocol what go-plugin does for the others: the process gets the
// handshake's cookie and its end of the channel (direct.NewChannel), its
// stderr is re-emitted under the verifier's name, and its first stdout
// line must be the handshake line, naming the descriptor it was given.
func spawnDirect(ctx context.Context, by time.Time, spec Spec, cfg Config, log hclog.Logger, exe *os.File) (*instance, *verify.Description, error) {
	ch, theirs, err := direct.NewChannel()
	if err != nil {
		return nil, nil, fmt.Errorf("host: verifier %q: %w", spec.Name, err)
	}
	d := &directProc{exitCh: make(chan struct{}), stderrDone: make(chan struct{}), stderr: &pluginStderr{log: log}}
	fd, err := d.start(ctx, spec, cfg, log, exe, theirs)
	theirs.Close() // the plugin has its copy, or never will
	if err != nil {
		ch.Close()
		return nil, nil, startError(spec, cfg.StartTimeout, err)
	}
	d.client = direct.NewClient(ch, maxDirectConns)
	inst := &instance{life: d, pid: d.proc.pid, started: time.Now(), v: d.client}
	fail := func(err error) (*instance, *verify.Description, error) {
		inst.kill() // ends an early Configure too: it closes the client
		return nil, nil, err
	}
	if k := spec.Known; k != nil && verify.CheckOptions(&k.Description, spec.Options) == nil {
		// A verifier the host knows is configured while its process
		// starts: the request waits in the channel and its pipes until
		// the plugin serves, where the host would wait for the handshake
		// line to send it: about 0.35 ms of a one-shot send, whose
		// handshake waits for the verdict and keeps the CPUs busy, and
		// 0.1–0.15 ms of a launch in an idle process.
		// Only the host's own tlspin-builtins, exec'ed here and reached
		// on a channel no other process holds, can read it. Options its
		// description refuses are not sent: launch refuses them.
		inst.early = d.configure(ctx, by, spec.Options)
	}
	if err := d.handshake(ctx, spec, by, cfg.StartTimeout, fd); err != nil {
		return fail(err)
	}
	if k := spec.Known; k != nil {
		d.client.SetNotifies(k.Notifies)
		desc := k.Description
		desc.Options = slices.Clone(desc.Options)
		return inst, &desc, nil
	}
	sctx, cancel := context.WithDeadline(ctx, by)
	defer cancel()
	desc, err := d.client.Describe(sctx)
	if err != nil {
		return fail(fmt.Errorf("host: verifier %q: describe: %w", spec.Name, err))
	}
	return inst, desc, nil
}

// directProc is one tlspin-builtins process and the host's end of its
// channel: the lifecycle of a direct instance.
type directProc struct {
	proc       *procRunner
	client     *direct.Client
	stderr     *pluginStderr
	lines      chan string   // the first stdout line, or "" at EOF
	exitCh     chan struct{} // closed once the process has been reaped
	stderrDone chan struct{} // closed once stderr has been read to its end
}

// start starts the process with channel as an inherited descriptor, whose
// number it returns, and its stdout and stderr on pipes the host reads
// itself, so that waiting for the process and reading its output do not
// depend on each other.
func (d *directProc) start(ctx context.Context, spec Spec, cfg Config, log hclog.Logger, exe *os.File, channel *os.File) (int, error) {
	r := newProcRunner(spec.Path, spec.Args, cfg.Env, exe)
	r.log = log
	cmd := r.command(nil)
	fd := 3 + len(cmd.ExtraFiles)
	cmd.ExtraFiles = append(cmd.ExtraFiles, channel)
	cmd.Env = append(cmd.Env, plugproc.CookieKey+"="+plugproc.CookieValue, direct.EnvChannel+"="+strconv.Itoa(fd))
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return 0, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	r.cmd = cmd
	err = startWithTimerSlack(func() error { return r.Start(ctx) })
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return 0, err
	}
	d.proc = r
	d.lines = make(chan string, 1)
	go d.readStdout(outR, log)
	go func() {
		_, _ = io.Copy(d.stderr, errR)
		errR.Close()
		d.stderr.end()
		close(d.stderrDone)
	}()
	go func() {
		r.noteExit(cmd.Wait())
		close(d.exitCh)
	}()
	return fd, nil
}

// configure sends opts in the background, bounded by ctx and by, when
// the start timeout ends, and returns where its answer will be.
func (d *directProc) configure(ctx context.Context, by time.Time, opts verify.Options) <-chan configured {
	done := make(chan configured, 1)
	go func() {
		sctx, cancel := context.WithDeadline(ctx, by)
		defer cancel()
		cr, err := d.client.Configure(sctx, &verify.ConfigureRequest{Options: opts})
		done <- configured{cr, err}
	}()
	return done
}

// readStdout passes on the first line of the plugin's stdout and logs any
// other as a fault: after the handshake, stdout is not the plugin's to use.
// Those lines are logged at the rate of stderr's: a plugin must not flood
// the host's log through stdout either.
func (d *directProc) readStdout(out *os.File, log hclog.Logger) {
	defer out.Close()
	br := bufio.NewReaderSize(out, maxStdoutLine)
	first := true
	rate := lineRate{stream: "stdout"}
	defer rate.end(log)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case len(line) == 0:
		case first:
			d.lines <- string(line)
			first = false
		case rate.admit(log, hclog.Warn):
			log.Warn("verifier plugin wrote to stdout after its handshake; ignored", "line", truncateLine(string(line)))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if first {
				d.lines <- ""
			}
			return
		}
	}
}

// handshake waits for the handshake line until by, when the start
// timeout ends, and checks that it names the channel's descriptor, fd.
func (d *directProc) handshake(ctx context.Context, spec Spec, by time.Time, timeout time.Duration, fd int) error {
	t := time.NewTimer(time.Until(by))
	defer t.Stop()
	var line string
	select {
	case line = <-d.lines:
	case <-t.C:
		return fmt.Errorf("%w: verifier %q: %q wrote no handshake line within %s", ErrHandshake, spec.Name, spec.Path, timeout)
	case <-ctx.Done():
		return abandoned(ctx, spec.Name)
	}
	if line == "" {
		err := fmt.Errorf("%w: verifier %q: %q exited before the handshake", ErrHandshake, spec.Name, spec.Path)
		d.proc.kill()
		d.waitStderr()
		if said := d.stderr.String(); said != "" {
			err = fmt.Errorf("%w; its last words on stderr: %q", err, said)
		}
		return err
	}
	got, err := direct.ParseHandshake(line)
	if err != nil {
		return fmt.Errorf("%w: verifier %q (%s): %w", ErrHandshake, spec.Name, spec.Path, err)
	}
	if got != fd {
		return fmt.Errorf("%w: verifier %q: it serves descriptor %d, not the channel the host gave (%d)", ErrHandshake, spec.Name, got, fd)
	}
	return nil
}

// waitStderr waits, at most stderrWait, for the plugin's stderr to end: a
// process outside the plugin's group could hold it open forever.
func (d *directProc) waitStderr() {
	t := time.NewTimer(stderrWait)
	defer t.Stop()
	select {
	case <-d.stderrDone:
	case <-t.C:
	}
}

func (d *directProc) exitStatus() error { return d.proc.exitStatus() }

func (d *directProc) exited() bool {
	select {
	case <-d.exitCh:
		return true
	default:
		return false
	}
}

func (d *directProc) kill() {
	d.proc.kill()
	d.release()
}

func (d *directProc) stop() {
	if d.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), gracePeriod)
		if d.client.Shutdown(ctx) == nil {
			select {
			case <-d.exitCh:
			case <-ctx.Done():
			}
		}
		cancel()
	}
	d.proc.kill()
	d.release()
}

// release closes the channel and reaps the process, once it has been
// killed or has exited. Its last stderr lines are logged before it
// returns.
func (d *directProc) release() {
	if d.client != nil {
		d.client.Close()
	}
	<-d.exitCh
	d.waitStderr()
}

// truncateLine cuts a line of a plugin's output for a log.
func truncateLine(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
