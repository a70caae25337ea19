package conformance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/rpc"
)

// coreProtocol is go-plugin's own protocol version, the first field of the
// handshake line.
const coreProtocol = 1

// maxLine bounds the handshake line a plugin may print.
const maxLine = 64 << 10

// process is one plugin process, started the way tlspin's host starts it
// on Linux: the magic cookie, the protocol versions the host speaks and a
// private socket directory in the environment, no AutoMTLS certificate,
// stdin closed.
type process struct {
	cmd    *exec.Cmd
	stderr *capture
	// after holds what the plugin wrote to stdout after the handshake line.
	after      *capture
	stdoutDone chan struct{}
	// stdio holds what a go-plugin server relayed from its stdout over
	// the stdio stream (Go plugins: os.Stdout after the handshake).
	stdio     *capture
	stdioDone chan struct{}
	exited    chan struct{}
	waitErr   error
	// sockDir is PLUGIN_UNIX_SOCKET_DIR, removed by kill or, once the
	// process has exited by itself, by removeSockDir.
	sockDir string
}

// start launches t and returns the process and the first line it printed
// on stdout, or an error when it printed none within timeout.
func start(ctx context.Context, t Target, timeout time.Duration) (*process, string, error) {
	// A pinned plugin is hashed and run as the same open file, as the host
	// runs it: never a file with another sum, nor one swapped in since.
	exe, err := host.OpenPinned(t.Name, t.Path, t.SHA256)
	if err != nil {
		return nil, "", fmt.Errorf("conformance: %w", err)
	}
	if exe != nil {
		defer exe.Close() // the child has its own copy once started
	}
	dir, err := os.MkdirTemp("", "plugin-dir") // 0700, as go-plugin's
	if err != nil {
		return nil, "", fmt.Errorf("conformance: %w", err)
	}
	p := &process{
		stderr:     &capture{limit: 4 << 10, tail: true},
		after:      &capture{limit: 1 << 10},
		stdoutDone: make(chan struct{}),
		stdio:      &capture{limit: 1 << 10},
		stdioDone:  make(chan struct{}),
		exited:     make(chan struct{}),
		sockDir:    dir,
	}
	cmd := exec.Command(t.Path, t.Args...)
	if exe != nil {
		// The child's fd 3, without close-on-exec: the kernel resolves the
		// path in the child, so it runs the file hashed.
		cmd.ExtraFiles = []*os.File{exe}
		cmd.Path = host.ExecPath(3)
	}
	cmd.Env = append(append([]string{}, t.Env...),
		rpc.Handshake.MagicCookieKey+"="+rpc.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS="+joinInts(rpc.SupportedVersions()),
		"PLUGIN_MIN_PORT=10000", "PLUGIN_MAX_PORT=25000",
		"PLUGIN_UNIX_SOCKET_DIR="+dir,
	)
	cmd.Stderr = p.stderr
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = time.Second
	pr, pw, err := os.Pipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("conformance: %w", err)
	}
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		pr.Close()
		pw.Close()
		return nil, "", fmt.Errorf("conformance: cannot run %q: %w", t.Path, err)
	}
	pw.Close()
	p.cmd = cmd
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	lines := make(chan lineResult, 1)
	go func() {
		defer close(p.stdoutDone)
		defer pr.Close()
		br := bufio.NewReader(pr)
		l, err := readLine(br)
		lines <- lineResult{l, err}
		if err == nil {
			_, _ = io.Copy(p.after, br)
		}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-lines:
		if r.err != nil {
			p.kill()
			return nil, "", p.explain(fmt.Errorf("no handshake line on stdout: %w", r.err))
		}
		return p, r.line, nil
	case <-timer.C:
		p.kill()
		return nil, "", p.explain(fmt.Errorf("no handshake line on stdout within %s", timeout))
	case <-ctx.Done():
		p.kill()
		return nil, "", ctx.Err()
	}
}

type lineResult struct {
	line string
	err  error
}

// readLine reads one line of at most maxLine bytes, without its newline.
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > maxLine {
			return "", fmt.Errorf("first line longer than %d bytes", maxLine)
		}
		switch {
		case err == nil:
			return strings.TrimRight(string(b), "\r\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(b) > 0:
			return "", fmt.Errorf("stdout closed before the end of the first line %q", b)
		default:
			return "", fmt.Errorf("stdout closed before any line (%w)", err)
		}
	}
}

// explain adds the process's exit status and last words on stderr to err.
func (p *process) explain(err error) error {
	select {
	case <-p.exited:
		err = fmt.Errorf("%w; %s", err, exitStatus(p.waitErr))
	default:
	}
	if s := strings.TrimSpace(p.stderr.String()); s != "" {
		err = fmt.Errorf("%w; its last words on stderr: %q", err, s)
	}
	return err
}

// exitStatus says how a process ended, given what Wait returned: "it
// exited with status 0" rather than "it exited: <nil>".
func exitStatus(waitErr error) string {
	var ee *exec.ExitError
	switch {
	case waitErr == nil:
		return "it exited with status 0"
	case errors.As(waitErr, &ee) && ee.ExitCode() >= 0:
		return fmt.Sprintf("it exited with status %d", ee.ExitCode())
	}
	// Killed by a signal ("signal: killed"), or Wait itself failed.
	return fmt.Sprintf("it ended: %v", waitErr)
}

// alive reports whether the process is still running.
func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// waitExit waits up to d for the process to exit.
func (p *process) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		return false
	}
}

// kill ends the process group and waits for the process and its stdout.
func (p *process) kill() {
	killGroup(p.cmd.Process.Pid)
	<-p.exited
	p.removeSockDir()
	select {
	case <-p.stdoutDone:
	case <-time.After(time.Second):
	}
}

// removeSockDir removes the socket directory the plugin was given, with
// whatever the plugin left in it.
func (p *process) removeSockDir() { os.RemoveAll(p.sockDir) }

// handshake is a parsed go-plugin handshake line:
// CORE|APP|NETWORK|ADDRESS|PROTOCOL|SERVER-CERT.
type handshake struct {
	app              int
	network, address string
	protocol         string
}

// parseHandshake checks a handshake line as go-plugin's client reads it.
func parseHandshake(line string) (handshake, error) {
	parts := strings.Split(line, "|")
	if len(parts) < 4 {
		return handshake{}, fmt.Errorf("%q is not CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT", line)
	}
	var h handshake
	core, err := strconv.Atoi(parts[0])
	if err != nil || core != coreProtocol {
		return h, fmt.Errorf("core protocol %q, want %d (go-plugin's)", parts[0], coreProtocol)
	}
	if h.app, err = strconv.Atoi(parts[1]); err != nil {
		return h, fmt.Errorf("protocol version %q is not a number", parts[1])
	}
	h.network, h.address = parts[2], parts[3]
	if h.network != "unix" && h.network != "tcp" {
		return h, fmt.Errorf("network %q, want unix or tcp", h.network)
	}
	if h.address == "" {
		return h, errors.New("empty address")
	}
	if len(parts) < 5 {
		return h, errors.New("no protocol field: go-plugin then assumes netrpc, and the host speaks only grpc")
	}
	if h.protocol = parts[4]; h.protocol != "grpc" {
		return h, fmt.Errorf("protocol %q, want grpc", h.protocol)
	}
	// A sixth field, the AutoMTLS certificate, is ignored: the host sent
	// none.
	return h, nil
}

// capture keeps at most limit bytes of what is written to it (the first
// ones, or the last ones with tail) and counts all of them.
type capture struct {
	mu    sync.Mutex
	limit int
	tail  bool
	buf   []byte
	n     int
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += len(p)
	c.buf = append(c.buf, p...)
	if over := len(c.buf) - c.limit; over > 0 {
		if c.tail {
			c.buf = append(c.buf[:0], c.buf[over:]...)
		} else {
			c.buf = c.buf[:c.limit]
		}
	}
	return len(p), nil
}

// Len returns how many bytes were written in all.
func (c *capture) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.buf)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// stdioMethod is go-plugin's stream of what a Go plugin writes to
// os.Stdout and os.Stderr after the handshake.
const stdioMethod = "/plugin.GRPCStdio/StreamStdio"

// watchStdio records the stdout data of go-plugin's stdio stream until the
// stream ends. A plugin without the stream (most non-Go plugins) records
// nothing.
func (p *process) watchStdio(conn *grpc.ClientConn) {
	defer close(p.stdioDone)
	st, err := conn.NewStream(context.Background(), &grpc.StreamDesc{ServerStreams: true}, stdioMethod)
	if err != nil {
		return
	}
	if st.SendMsg(&emptypb.Empty{}) != nil || st.CloseSend() != nil {
		return
	}
	for {
		// StdioData{channel = 1, data = 2} lands in Empty's unknown fields.
		var m emptypb.Empty
		if err := st.RecvMsg(&m); err != nil {
			return
		}
		if data, ok := stdoutData(m.ProtoReflect().GetUnknown()); ok {
			_, _ = p.stdio.Write(data)
		}
	}
}

// stdoutData decodes a StdioData message and returns its data when its
// channel is STDOUT (1).
func stdoutData(b []byte) ([]byte, bool) {
	var ch uint64
	var data []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			ch, n = protowire.ConsumeVarint(b)
		case num == 2 && typ == protowire.BytesType:
			data, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return nil, false
		}
		b = b[n:]
	}
	return data, ch == 1
}
