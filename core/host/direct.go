package host

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/direct"
	"github.com/tlspin/tlspin/core/peercred"
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
// direct protocol what go-plugin does for the others: the process gets the handshake's cookie
// and a private socket directory, its stderr is re-emitted under the
// verifier's name, its first stdout line must be the handshake line, and
// the socket it names is admitted only if the kernel says the plugin
// serves it (peercred.CheckHost).
func spawnDirect(ctx context.Context, spec Spec, cfg Config, log hclog.Logger, exe *os.File) (*instance, *verify.Description, error) {
	dir, err := os.MkdirTemp("", "tlspin-plugin-") // mode 0700
	if err != nil {
		return nil, nil, fmt.Errorf("host: verifier %q: socket directory: %w", spec.Name, err)
	}
	d := &directProc{dir: dir, exitCh: make(chan struct{}), stderrDone: make(chan struct{}), stderr: &pluginStderr{log: log}}
	if err := d.start(ctx, spec, cfg, log, exe); err != nil {
		os.RemoveAll(dir)
		return nil, nil, startError(spec, err)
	}
	inst := &instance{life: d, pid: d.proc.pid, started: time.Now()}
	fail := func(err error) (*instance, *verify.Description, error) {
		inst.kill()
		return nil, nil, err
	}
	sock, err := d.handshake(ctx, spec, cfg.StartTimeout)
	if err != nil {
		return fail(err)
	}
	pid := d.proc.pid
	d.client = direct.NewClient(func(ctx context.Context) (net.Conn, error) {
		var nd net.Dialer
		c, err := nd.DialContext(ctx, "unix", sock)
		if err != nil {
			return nil, err
		}
		cred, err := peercred.Of(c)
		if err == nil {
			err = peercred.CheckHost(cred, pid)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}, maxDirectConns)
	inst.v = d.client
	if k := spec.Known; k != nil {
		d.client.SetNotifies(k.Notifies)
		desc := k.Description
		desc.Options = slices.Clone(desc.Options)
		return inst, &desc, nil
	}
	sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	desc, err := d.client.Describe(sctx)
	if err != nil {
		return fail(fmt.Errorf("host: verifier %q: describe: %w", spec.Name, err))
	}
	return inst, desc, nil
}

// directProc is one tlspin-builtins process and the host's end of its
// socket: the lifecycle of a direct instance.
type directProc struct {
	dir        string // the private socket directory, removed at the end
	proc       *procRunner
	client     *direct.Client
	stderr     *pluginStderr
	lines      chan string   // the first stdout line, or "" at EOF
	exitCh     chan struct{} // closed once the process has been reaped
	stderrDone chan struct{} // closed once stderr has been read to its end
}

// start starts the process with its stdout and stderr on pipes the host
// reads itself, so that waiting for the process and reading its output
// do not depend on each other.
func (d *directProc) start(ctx context.Context, spec Spec, cfg Config, log hclog.Logger, exe *os.File) error {
	r := newProcRunner(spec.Path, spec.Args, cfg.Env, exe)
	r.log = log
	cmd := r.command([]string{plugproc.CookieKey + "=" + plugproc.CookieValue, direct.EnvSocketDir + "=" + d.dir})
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	r.cmd = cmd
	err = r.Start(ctx)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return err
	}
	d.proc = r
	d.lines = make(chan string, 1)
	go d.readStdout(outR, log)
	go func() {
		_, _ = io.Copy(d.stderr, errR)
		errR.Close()
		close(d.stderrDone)
	}()
	go func() {
		_ = cmd.Wait()
		close(d.exitCh)
	}()
	return nil
}

// readStdout passes on the first line of the plugin's stdout and logs any
// other as a fault: after the handshake, stdout is not the plugin's to use.
func (d *directProc) readStdout(out *os.File, log hclog.Logger) {
	defer out.Close()
	br := bufio.NewReaderSize(out, maxStdoutLine)
	first := true
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if first {
				d.lines <- string(line)
				first = false
			} else {
				log.Warn("verifier plugin wrote to stdout after its handshake; ignored", "line", truncateLine(string(line)))
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if first {
				d.lines <- ""
			}
			return
		}
	}
}

// handshake waits for the handshake line and returns the socket it names.
func (d *directProc) handshake(ctx context.Context, spec Spec, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	var line string
	select {
	case line = <-d.lines:
	case <-t.C:
		return "", fmt.Errorf("%w: verifier %q: %q wrote no handshake line within %s", ErrHandshake, spec.Name, spec.Path, timeout)
	case <-ctx.Done():
		return "", fmt.Errorf("host: verifier %q: start abandoned: %w", spec.Name, ctx.Err())
	}
	if line == "" {
		err := fmt.Errorf("%w: verifier %q: %q exited before the handshake", ErrHandshake, spec.Name, spec.Path)
		d.proc.kill()
		d.waitStderr()
		if said := d.stderr.String(); said != "" {
			err = fmt.Errorf("%w; its last words on stderr: %q", err, said)
		}
		return "", err
	}
	sock, err := direct.ParseHandshake(line)
	if err != nil {
		return "", fmt.Errorf("%w: verifier %q (%s): %w", ErrHandshake, spec.Name, spec.Path, err)
	}
	if filepath.Dir(sock) != d.dir {
		return "", fmt.Errorf("%w: verifier %q: socket %q is not in the directory the host gave (%s)", ErrHandshake, spec.Name, sock, d.dir)
	}
	return sock, nil
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
			// The plugin no longer listens: its directory goes while it
			// exits (a rmdir takes half a millisecond on a small VM).
			os.RemoveAll(d.dir)
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

// release closes the channel, reaps the process and removes the socket
// directory, once the process has been killed or has exited. Its last
// stderr lines are logged before it returns.
func (d *directProc) release() {
	if d.client != nil {
		d.client.Close()
	}
	<-d.exitCh
	d.waitStderr()
	os.RemoveAll(d.dir)
}

// truncateLine cuts a line of a plugin's output for a log.
func truncateLine(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
