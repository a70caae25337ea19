package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"
)

// procRunner is the go-plugin runner.Runner of a plugin process. It
// replaces go-plugin's own (internal/cmdrunner) so that the host, not
// go-plugin, decides how the process starts:
//
//   - stdin is /dev/null: go-plugin hands a plugin the host's own stdin,
//     and a plugin (or a child it starts) could read what the user piped
//     into `tlspin send`.
//   - the process gets its own process group and a parent-death signal
//     (sysProcAttr), and Kill ends the whole group.
//   - a pinned executable runs from the very file descriptor its checksum
//     was computed from (see OpenPinned).
//   - pipesDone tells when go-plugin has copied the last of the plugin's
//     stderr, so that a failed start can quote it (see spawn); stderrEnd,
//     if set, is called then.
//   - sockDir is the socket directory go-plugin made for the plugin. It
//     removes it itself in Kill, but only for a process that started:
//     after a failed exec, spawn removes it (removeSockDir).
type procRunner struct {
	path string   // the executable, absolute; what logs and errors name
	args []string // arguments after the path
	env  []string // the host's share of the environment (Config.Env)
	exe  *os.File // the pinned executable, or nil

	log            hclog.Logger
	cmd            *exec.Cmd
	stdout, stderr io.ReadCloser
	pid            int
	started        bool
	pipesDone      chan struct{}
	pipesOnce      sync.Once
	stderrEnd      func()
	sockDir        string

	// startMu orders Start and abandon, which another goroutine calls
	// when the start's context ends: a process is started only if the
	// launch was not abandoned, and one started is killed if it was.
	startMu   sync.Mutex
	abandoned bool

	// handshook is set once the plugin's stdout has given a whole line
	// (go-plugin's handshake), which line holds (its first 1 KiB);
	// connectBy is when the start timeout ends, past which a connect
	// still under way is cut (connectCut set, the process killed).
	handshook  atomic.Bool
	lineMu     sync.Mutex
	line       []byte
	connectBy  time.Time
	connectCut atomic.Bool

	exitMu  sync.Mutex
	exitErr error // why the process exited, once reaped
	reaped  bool
	killed  bool // the host sent it SIGKILL before it was reaped

	// released is set once the host gives up reading the plugin's stdout
	// and stderr (releasePipes): they then read as ended.
	released    atomic.Bool
	releaseOnce sync.Once
}

var _ runner.Runner = (*procRunner)(nil)

func newProcRunner(path string, args, env []string, exe *os.File) *procRunner {
	return &procRunner{path: path, args: args, env: env, exe: exe, pipesDone: make(chan struct{})}
}

// prepare is the ClientConfig.RunnerFunc. gcmd is go-plugin's description
// of the command: only its environment (the handshake variables) is used.
func (r *procRunner) prepare(log hclog.Logger, gcmd *exec.Cmd, sockDir string) (runner.Runner, error) {
	r.log = log
	r.sockDir = sockDir
	cmd := r.command(gcmd.Env)
	var err error
	if r.stdout, err = cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if r.stderr, err = cmd.StderrPipe(); err != nil {
		return nil, err
	}
	r.cmd = cmd
	return r, nil
}

// command is the plugin's command with extra environment variables on top
// of the host's share.
func (r *procRunner) command(extraEnv []string) *exec.Cmd {
	cmd := &exec.Cmd{
		Path:        r.path,
		Args:        append([]string{r.path}, r.args...),
		Env:         append(append([]string{}, r.env...), extraEnv...),
		Stdin:       nil, // /dev/null
		SysProcAttr: sysProcAttr(),
	}
	if r.exe != nil {
		// The child's fd 3 is r.exe (ExtraFiles[0]), without close-on-exec,
		// and the kernel resolves the path in the child: it runs the open
		// file, whatever the name now points to. An interpreter of a script
		// opens the same path, which still names fd 3.
		cmd.ExtraFiles = []*os.File{r.exe}
		cmd.Path = ExecPath(3)
	}
	return cmd
}

// Start starts the process, logging at debug level as go-plugin's own
// runner does.
func (r *procRunner) Start(context.Context) error {
	r.startMu.Lock()
	defer r.startMu.Unlock()
	if r.abandoned {
		return errAbandoned
	}
	r.log.Debug("starting plugin", "path", r.path, "args", r.args, "pinned", r.exe != nil)
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.started = true
	r.pid = r.cmd.Process.Pid
	r.log.Debug("plugin started", "path", r.path, "pid", r.pid)
	return nil
}

// errAbandoned is what Start returns once the launch was abandoned.
var errAbandoned = errors.New("host: launch abandoned")

// abandon gives up the launch, from any goroutine: a process not yet
// started never starts, and one started is killed, which ends go-plugin's
// wait for its handshake line (it heeds only the start timeout).
func (r *procRunner) abandon() {
	r.startMu.Lock()
	r.abandoned = true
	started := r.started
	r.startMu.Unlock()
	if started {
		r.kill()
	}
}

// Wait is called by go-plugin once it has read stdout and stderr to the
// end: every stderr line has been written to ClientConfig.Stderr.
func (r *procRunner) Wait(context.Context) error {
	r.pipesOnce.Do(func() {
		if r.stderrEnd != nil {
			r.stderrEnd()
		}
		close(r.pipesDone)
	})
	err := r.cmd.Wait()
	r.noteExit(err)
	return err
}

// noteExit records how the process ended, as cmd.Wait said.
func (r *procRunner) noteExit(err error) {
	r.exitMu.Lock()
	r.exitErr, r.reaped = err, true
	r.exitMu.Unlock()
}

// exitStatus is why the process ended on its own (its exit status, or a
// signal other than the host's SIGKILL), or nil while it runs, after it
// exited 0 or when the host killed it.
func (r *procRunner) exitStatus() error {
	r.exitMu.Lock()
	defer r.exitMu.Unlock()
	var ee *exec.ExitError
	if r.killed && errors.As(r.exitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return nil
		}
	}
	return r.exitErr
}

// waitPipes waits, at most d, until go-plugin has copied all of the
// plugin's stderr. It returns at once for a process that never started.
func (r *procRunner) waitPipes(d time.Duration) {
	if !r.started {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.pipesDone:
	case <-t.C:
	}
}

// Kill ends the plugin's process group (go-plugin calls it).
func (r *procRunner) Kill(context.Context) error {
	r.kill()
	return nil
}

// kill ends the plugin's process group: every process in it, including
// children the plugin started, and the plugin itself through its process
// handle, which cannot hit another process once the plugin has been
// reaped.
func (r *procRunner) kill() {
	if !r.started {
		return
	}
	r.exitMu.Lock()
	r.killed = r.killed || !r.reaped
	r.exitMu.Unlock()
	killGroup(r.pid)
	_ = r.cmd.Process.Kill()
	r.releasePipes()
}

// releasePipes gives up reading the plugin's stdout and stderr if they
// have not ended stderrWait after it was killed. go-plugin reaps the
// process, and its Kill returns, only once both have ended; a process
// outside the plugin's group that holds one open (a child that left it,
// with setsid: a daemon, Python's start_new_session) would hold Close, a
// restart and tlspin's exit for as long as it lives. A direct plugin's
// pipes are not go-plugin's (spawnDirect reads them): nothing to do.
func (r *procRunner) releasePipes() {
	if r.stdout == nil || r.stderr == nil {
		return
	}
	r.releaseOnce.Do(func() {
		go func() {
			t := time.NewTimer(stderrWait)
			defer t.Stop()
			select {
			case <-r.pipesDone:
				return
			case <-t.C:
			}
			r.log.Warn("the plugin was killed, but another process still holds its stdout or stderr open (a child that left its process group?): no longer reading them", "pid", r.pid)
			r.released.Store(true)
			r.stdout.Close()
			r.stderr.Close()
		}()
	})
}

// heldPipe is the plugin's stdout or stderr as go-plugin reads it: once
// the host has given it up (releasePipes), it reads as ended, rather than
// as an error go-plugin would log.
type heldPipe struct {
	io.ReadCloser
	released *atomic.Bool
}

func (h heldPipe) Read(p []byte) (int, error) {
	n, err := h.ReadCloser.Read(p)
	if err != nil && h.released.Load() {
		err = io.EOF
	}
	return n, err
}

// removeSockDir removes the plugin's socket directory; for a process
// that never started, after go-plugin's Kill, which leaves it.
func (r *procRunner) removeSockDir() {
	if r.sockDir != "" {
		os.RemoveAll(r.sockDir)
	}
}

func (r *procRunner) Stdout() io.ReadCloser {
	return &handshakeWatch{ReadCloser: heldPipe{r.stdout, &r.released}, r: r}
}

// cutConnect ends a start whose handshake line has arrived, from the time
// the start timeout ends: go-plugin's connect has no bound of ours. Before
// the line, go-plugin's own start timeout ends the wait. handshakeWatch
// calls it too, for a line that arrives after the timeout ended: between
// the two, one of them sees both the line and the time.
func (r *procRunner) cutConnect() {
	if r.handshook.Load() && !time.Now().Before(r.connectBy) && r.connectCut.CompareAndSwap(false, true) {
		r.abandon()
	}
}

// handshakeAddr is the network and address of the handshake line.
func (r *procRunner) handshakeAddr() (network, addr string) {
	r.lineMu.Lock()
	defer r.lineMu.Unlock()
	f := strings.Split(strings.TrimSpace(string(r.line)), "|")
	if len(f) < 4 {
		return "", ""
	}
	return f[2], f[3]
}

// handshakeWatch is the plugin's stdout as go-plugin reads it, noting
// when its first line (the handshake) has been read.
type handshakeWatch struct {
	io.ReadCloser
	r *procRunner
}

// maxLineKept is how much of the handshake line is kept for errors.
const maxLineKept = 1 << 10

func (w *handshakeWatch) Read(p []byte) (int, error) {
	n, err := w.ReadCloser.Read(p)
	if n > 0 && !w.r.handshook.Load() {
		got := p[:n]
		end := bytes.IndexByte(got, '\n')
		if end >= 0 {
			got = got[:end]
		}
		w.r.lineMu.Lock()
		if room := maxLineKept - len(w.r.line); room > 0 {
			w.r.line = append(w.r.line, got[:min(len(got), room)]...)
		}
		w.r.lineMu.Unlock()
		if end >= 0 {
			w.r.handshook.Store(true)
			if !w.r.connectBy.IsZero() {
				w.r.cutConnect()
			}
		}
	}
	return n, err
}
func (r *procRunner) Stderr() io.ReadCloser { return heldPipe{r.stderr, &r.released} }
func (r *procRunner) Name() string          { return r.path }
func (r *procRunner) Diagnose(context.Context) string {
	return ""
}

func (r *procRunner) ID() string {
	if r.pid == 0 {
		return ""
	}
	return strconv.Itoa(r.pid)
}

func (r *procRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *procRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// OpenPinned opens the executable at path for verifier name and checks
// that its content has the SHA-256 sum, failing with an error that wraps
// ErrChecksum otherwise; nil, nil when sum is empty. Whoever runs it must
// run that open file (ExecPath, as procRunner does), never the path
// again: a rename could have swapped the file since.
//
// go-plugin's SecureConfig hashes the file at a path, then executes the
// path: whoever can rename files in the directory swaps in another
// executable between the two. Two fixes were possible: exec the hashed
// file through its descriptor (/proc/self/fd/N), or copy it to a private
// 0700 directory and exec the copy. The descriptor wins: no copy of a
// large binary (tlspin itself for a built-in) on every restart, no
// temporary files left behind by a killed host, and a script or an
// interpreter that resolves its own location through the link
// (Python's sys.path[0], Node's main module) still finds its directory.
// What it does not stop is a writer of the file itself changing it in
// place after the check: whoever can write the pinned file could as well
// replace the pin's source, so pinned plugins belong in a directory and
// files only their owner and root can write.
func OpenPinned(name, path string, sum []byte) (*os.File, error) {
	if len(sum) == 0 {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("host: verifier %q: cannot run %s: %w", name, shownPath(path), err)
	}
	got, err := sha256Of(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("host: verifier %q: checksum of %s: %w", name, shownPath(path), err)
	}
	if !hashEqual(got, sum) {
		f.Close()
		return nil, checksumError(name, path, got, sum)
	}
	return f, nil
}
