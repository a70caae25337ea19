package direct_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/direct"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// fake is a verifier that records what it was asked; verify, if set,
// decides.
type fake struct {
	mu        sync.Mutex
	options   verify.Options
	requests  []*verify.Request
	committed []*verify.Request
	verify    func(ctx context.Context, req *verify.Request) (*verify.Verdict, error)
	configure error
}

func (f *fake) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{Name: "fake", Version: "1.2", Summary: "for tests", Options: []verify.Option{
		{Name: "pin", Description: "a pin", Required: true, Repeated: true}, {Name: "chain"}}}, nil
}

func (f *fake) Configure(_ context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.options = req.Options
	return &verify.ConfigureResponse{NeedsChain: len(req.Options["chain"]) > 0}, f.configure
}

func (f *fake) Verify(ctx context.Context, req *verify.Request) (*verify.Verdict, error) {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	if f.verify != nil {
		return f.verify(ctx, req)
	}
	return &verify.Verdict{Allow: true, Reason: "pinned", Matched: "sha256/x", CacheFor: time.Minute, Commit: true}, nil
}

func (f *fake) Commit(_ context.Context, req *verify.Request) (*verify.CommitResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.committed = append(f.committed, req)
	return &verify.CommitResponse{}, nil
}

// plain is a verifier that is neither a Committer nor a PolicyNotifier.
type plain struct{ verify.Verifier }

// notifier is a fake that is a PolicyNotifier.
type notifier struct {
	*fake
	changes chan verify.PolicyChange
}

func (n *notifier) PolicyChanges(ctx context.Context) <-chan verify.PolicyChange { return n.changes }

// channel returns both ends of a new channel, closed when the test ends.
func channel(t testing.TB) (host, plugin *net.UnixConn) {
	t.Helper()
	host, f, err := direct.NewChannel()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	plugin = c.(*net.UnixConn)
	t.Cleanup(func() { host.Close(); plugin.Close() })
	return host, plugin
}

// counted returns a channel whose plugin's end passes every connection on
// to to's plugin end, counting them. The test's cleanup waits for the
// relay to end: a descriptor closed while it reads is closed for good
// only when its read returns, and would otherwise close during a later
// test, which may be counting the process's descriptors.
func counted(t testing.TB, to *net.UnixConn) (*net.UnixConn, *atomic.Int32) {
	t.Helper()
	host, mid := channel(t)
	var n atomic.Int32
	relayed := make(chan struct{})
	t.Cleanup(func() {
		mid.Close()
		to.Close() // in case the relay is blocked writing to it
		<-relayed
	})
	go func() {
		defer close(relayed)
		defer to.Close()
		for {
			b, oob := make([]byte, 1), make([]byte, syscall.CmsgSpace(3*4))
			k, oobn, _, _, err := mid.ReadMsgUnix(b, oob)
			if err != nil || k == 0 {
				return
			}
			n.Add(1)
			_, _, err = to.WriteMsgUnix(b, oob[:oobn], nil)
			closeRights(oob[:oobn])
			if err != nil {
				return
			}
		}
	}()
	return host, &n
}

// closeRights closes the descriptors that oob passed.
func closeRights(oob []byte) {
	msgs, _ := syscall.ParseSocketControlMessage(oob)
	for _, m := range msgs {
		fds, _ := syscall.ParseUnixRights(&m)
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}
}

// serve runs Serve for v and returns a client of it, Serve's result and
// the number of connections the client opened.
func serve(t testing.TB, v verify.Verifier, maxConns int) (*direct.Client, <-chan error, *atomic.Int32) {
	t.Helper()
	mid, plugin := channel(t)
	host, n := counted(t, mid)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- direct.Serve(ctx, plugin, v, nil)
		close(done)
	}()
	c := direct.NewClient(host, maxConns)
	t.Cleanup(func() {
		c.Close()
		cancel()
		<-done
	})
	return c, done, n
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestRoundTrip(t *testing.T) {
	f := &fake{}
	c, _, _ := serve(t, f, 2)
	ctx := ctxFor(t, 10*time.Second)

	d, err := c.Describe(ctx)
	if want, _ := f.Describe(ctx); err != nil || !reflect.DeepEqual(d, want) {
		t.Fatalf("Describe = %+v, %v; want %+v", d, err, want)
	}
	opts := verify.Options{"pin": {"sha256/a", "sha256/b", "sha256/a"}, "chain": {"yes"}}
	cr, err := c.Configure(ctx, &verify.ConfigureRequest{Options: opts})
	if err != nil || !cr.NeedsChain || !reflect.DeepEqual(f.options, opts) {
		t.Fatalf("Configure = %+v, %v; verifier got %v, want %v", cr, err, f.options, opts)
	}
	req := &verify.Request{PeerChain: [][]byte{[]byte("leaf\x00\xff"), []byte("intermediate"), {}}, ServerName: "api.example",
		Side: verify.ServerVerifiesClient, RemoteAddr: "127.0.0.1:4433", TLSVersion: 0x0304, CipherSuite: 0x1301, ALPN: "h2", DidResume: true, NoCommit: true}
	v, err := c.Verify(ctx, req)
	want := &verify.Verdict{Allow: true, Reason: "pinned", Matched: "sha256/x", CacheFor: time.Minute, Commit: true}
	if err != nil || !reflect.DeepEqual(v, want) {
		t.Fatalf("Verify = %+v, %v; want %+v", v, err, want)
	}
	if _, err := c.Commit(ctx, req); err != nil {
		t.Fatal(err)
	}
	for what, got := range map[string][]*verify.Request{"Verify": f.requests, "Commit": f.committed} {
		if len(got) != 1 || !reflect.DeepEqual(got[0], req) {
			t.Errorf("%s received %+v; want %+v", what, got, req)
		}
	}
	// Nothing to commit is not an error.
	c2, _, _ := serve(t, plain{f}, 1)
	if _, err := c2.Commit(ctx, req); err != nil {
		t.Errorf("Commit on a verifier that is not a Committer: %v", err)
	}
}

// TestRequestsOnOneConnection: the host encodes each request into its
// connection's buffer, kept from the last one unless it grew large. Calls
// of every size in turn on one connection each reach the verifier whole,
// with nothing of an earlier request in them.
func TestRequestsOnOneConnection(t *testing.T) {
	f := &fake{}
	c, _, n := serve(t, f, 1)
	ctx := ctxFor(t, 10*time.Second)
	var sent []*verify.Request
	for i, size := range []int{5000, 10, 40 << 10, 3, 20 << 10, 0, 7} {
		req := &verify.Request{PeerChain: [][]byte{bytes.Repeat([]byte{byte('a' + i)}, size)}, ServerName: strings.Repeat("n", size%97),
			Side: verify.ClientVerifiesServer, RemoteAddr: fmt.Sprintf("127.0.0.1:%d", 1000+i)}
		if v, err := c.Verify(ctx, req); err != nil || !v.Allow {
			t.Fatalf("Verify #%d (%d bytes) = %+v, %v", i, size, v, err)
		}
		sent = append(sent, req)
	}
	if !reflect.DeepEqual(f.requests, sent) {
		t.Errorf("the verifier received %d requests unlike the %d sent", len(f.requests), len(sent))
	}
	if got := n.Load(); got != 1 {
		t.Errorf("%d connections; want 1", got)
	}
}

// TestVerifierErrors: a verifier's error reaches the host as a
// RemoteError, a rejection, and leaves the connection usable.
func TestVerifierErrors(t *testing.T) {
	long := strings.Repeat("é", 3000)
	tests := []struct {
		name      string
		err       error
		verdict   *verify.Verdict
		want      string
		badOption bool
	}{
		{"plain error", errors.New("no way"), nil, "no way", false},
		{"own timeout", fmt.Errorf("ocsp: %w", context.DeadlineExceeded), nil, "ocsp: context deadline exceeded", false},
		{"bad option", &verify.OptionError{Option: "pin", Value: "x", Err: errors.New("bad")}, nil, `option pin="x": bad`, true},
		{"no verdict", nil, nil, "verifier returned no verdict", false},
		{"long message", errors.New(long), nil, "truncated: 6000 bytes", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{verify: func(context.Context, *verify.Request) (*verify.Verdict, error) { return tc.verdict, tc.err }}
			c, _, accepted := serve(t, f, 1)
			for range 2 {
				_, err := c.Verify(ctxFor(t, 10*time.Second), &verify.Request{})
				var remote *direct.RemoteError
				if !errors.As(err, &remote) || !strings.Contains(remote.Message, tc.want) || len(remote.Message) > verify.MaxTextLen+64 {
					t.Fatalf("err = %.200v (%T); want a RemoteError saying %q", err, err, tc.want)
				}
				if errors.Is(err, verify.ErrBadOption) != tc.badOption || errors.Is(err, direct.ErrTransport) || errors.Is(err, direct.ErrGarbage) || errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err %v: bad option %v, want %v; and no fault of the plugin or the host", err, errors.Is(err, verify.ErrBadOption), tc.badOption)
				}
			}
			if n := accepted.Load(); n != 1 {
				t.Errorf("%d connections for two calls; want the first one kept", n)
			}
		})
	}
	f := &fake{configure: &verify.OptionError{Option: "pin", Value: "zz", Err: errors.New("not a pin")}}
	c, _, _ := serve(t, f, 1)
	if _, err := c.Configure(ctxFor(t, 10*time.Second), &verify.ConfigureRequest{}); !errors.Is(err, verify.ErrBadOption) || !strings.Contains(err.Error(), `pin="zz"`) {
		t.Errorf("Configure = %v; want a bad option quoting it", err)
	}
}

// frameOf is a frame of body with id, its length true.
func frameOf(id uint32, body []byte) []byte { return lyingFrame(uint32(len(body)), id, body) }

// lyingFrame is a frame of body with id whose header says it is n bytes.
func lyingFrame(n, id uint32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, n)
	b = binary.BigEndian.AppendUint32(b, id)
	return append(b, body...)
}

// writeFrame writes a frame of body with id.
func writeFrame(w io.Writer, id uint32, body []byte) { w.Write(frameOf(id, body)) }

// readRequest reads one request frame from the host: its id and body.
func readRequest(r *bufio.Reader) (uint32, []byte, error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(h[:4]))
	_, err := io.ReadFull(r, b)
	return binary.BigEndian.Uint32(h[4:]), b, err
}

// allow is an answer that allows.
var allow = direct.EncodeVerdict(verify.Verdict{Allow: true, Reason: "ok"})

// hostile plays a plugin that runs script on the first connection, after
// reading its request; later connections get an allow. It returns the
// client, the number of connections taken and a channel closed when the
// script has returned.
func hostile(t *testing.T, script func(io.Writer, *bufio.Reader)) (*direct.Client, *atomic.Int32, <-chan struct{}) {
	t.Helper()
	host, plugin := channel(t)
	var n atomic.Int32
	scripted := make(chan struct{})
	go func() {
		for {
			conn, err := direct.TakePipes(plugin)
			if err != nil {
				return
			}
			first := n.Add(1) == 1
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				if _, _, err := readRequest(r); err != nil {
					t.Errorf("hostile server: reading the request: %v", err)
					return
				}
				if !first {
					answer(allow)(conn, r)
					return
				}
				defer close(scripted)
				script(conn, r)
			}()
		}
	}()
	c := direct.NewClient(host, 1)
	t.Cleanup(func() { c.Close() })
	return c, &n, scripted
}

// answer is a script that answers body to a connection's first request
// (its id is 1), then an allow to every request until the host closes the
// connection.
func answer(body []byte) func(io.Writer, *bufio.Reader) {
	return func(conn io.Writer, r *bufio.Reader) {
		writeFrame(conn, 1, body)
		answerAll(conn, r, allow)
	}
}

// answerAll answers body to every request until the host closes the
// connection.
func answerAll(conn io.Writer, r *bufio.Reader, body []byte) {
	for {
		id, _, err := readRequest(r)
		if err != nil {
			return
		}
		writeFrame(conn, id, body)
	}
}

// TestHostileServer: whatever a plugin answers, the host gets an error of
// the right class, a bounded text, and a new connection for the next call.
func TestHostileServer(t *testing.T) {
	long := strings.Repeat("r", 5000)
	tests := []struct {
		name    string
		script  func(io.Writer, *bufio.Reader)
		timeout time.Duration
		want    error  // nil: an answer
		says    string // in the error, or in the reason
	}{
		{"oversize length", func(c io.Writer, r *bufio.Reader) { c.Write(lyingFrame(0xffffffff, 1, nil)); io.Copy(io.Discard, r) }, 0,
			direct.ErrGarbage, "direct: malformed answer from verifier plugin: frame of 4294967295 bytes exceeds 1048576"},
		{"truncated", answer(direct.EncodeVerdict(verify.Verdict{Allow: true, Reason: "pinned"})[:4]), 0, direct.ErrGarbage, "length 6 exceeds the 1 bytes left"},
		{"unknown kind", answer([]byte{9}), 0, direct.ErrGarbage, "unknown answer kind 9"},
		{"empty body", answer(nil), 0, direct.ErrGarbage, "malformed frame: truncated"},
		{"trailing bytes", answer(append(direct.EncodeVerdict(verify.Verdict{Allow: true}), 0)), 0, direct.ErrGarbage, "1 trailing bytes"},
		{"a count past the end", answer([]byte{direct.KindVerdict, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}), 0, direct.ErrGarbage, "length 4294967295 exceeds the 0 bytes left"},
		{"no verdict", answer(direct.EncodeEmpty()), 0, direct.ErrGarbage, "verify answered no verdict"},
		{"negative cache_for", answer(direct.EncodeVerdict(verify.Verdict{Allow: true, CacheFor: -time.Second})), 0, direct.ErrGarbage, "negative cache time -1s"},
		{"not a boolean", answer([]byte{direct.KindVerdict, 2, 0, 0, 0, 0}), 0, direct.ErrGarbage, "boolean byte 2"},
		{"5 KB reason", answer(direct.EncodeVerdict(verify.Verdict{Reason: long})), 0, nil, "truncated: 5000 bytes in all"},
		{"an answer to another request", answerAs(2, allow), 0, direct.ErrGarbage, "an answer to request 2 where request 1 was asked"},
		{"an answer to no request", answerAs(0, allow), 0, direct.ErrGarbage, "an answer to request 0 where request 1 was asked"},
		{"closed mid-answer", func(c io.Writer, _ *bufio.Reader) { c.Write(lyingFrame(100, 1, allow)) }, 0, direct.ErrTransport, "unexpected EOF"},
		{"closed without answer", func(io.Writer, *bufio.Reader) {}, 0, direct.ErrTransport, "connection closed before an answer"},
		{"never answers", func(_ io.Writer, r *bufio.Reader) { io.Copy(io.Discard, r) }, 200 * time.Millisecond, context.DeadlineExceeded, "direct: verify: context deadline exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, accepted, scripted := hostile(t, tc.script)
			ctx := ctxFor(t, cmp(tc.timeout, 10*time.Second))
			v, err := c.Verify(ctx, &verify.Request{PeerChain: [][]byte{[]byte("leaf")}})
			switch {
			case tc.want == nil && (err != nil || !strings.Contains(v.Reason, tc.says) || len(v.Reason) > verify.MaxTextLen+64):
				t.Fatalf("Verify = %.100v, %v; want a reason of at most %d bytes saying %q", v, err, verify.MaxTextLen+64, tc.says)
			case tc.want != nil && (!errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says)):
				t.Fatalf("Verify = %v, %v; want %v saying %q", v, err, tc.want, tc.says)
			}
			if tc.want == context.DeadlineExceeded && ctx.Err() == nil {
				t.Errorf("a timeout, but ctx.Err() is nil")
			}
			if tc.want != nil && (errors.Is(err, direct.ErrGarbage) == errors.Is(err, direct.ErrTransport) && tc.want != context.DeadlineExceeded) {
				t.Errorf("err %v is both garbage and transport, or neither", err)
			}
			if tc.want != nil {
				<-scripted // the failed connection is closed: the script's read ended
			}
			v, err = c.Verify(ctxFor(t, 10*time.Second), &verify.Request{})
			if err != nil || !v.Allow {
				t.Fatalf("next Verify = %+v, %v; want an allow", v, err)
			}
			if n, want := accepted.Load(), map[bool]int32{true: 1, false: 2}[tc.want == nil]; n != want {
				t.Errorf("%d connections; want %d", n, want)
			}
		})
	}
}

// answerAs is a script that answers body with id, whatever was asked.
func answerAs(id uint32, body []byte) func(io.Writer, *bufio.Reader) {
	return func(c io.Writer, r *bufio.Reader) {
		writeFrame(c, id, body)
		io.Copy(io.Discard, r)
	}
}

func cmp(d, dflt time.Duration) time.Duration {
	if d == 0 {
		return dflt
	}
	return d
}

// TestCancel: a context cancelled without a deadline interrupts a call
// blocked on a plugin that does not answer.
func TestCancel(t *testing.T) {
	c, _, scripted := hostile(t, func(_ io.Writer, r *bufio.Reader) { io.Copy(io.Discard, r) })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := c.Verify(ctx, &verify.Request{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify = %v; want context.Canceled", err)
	}
	<-scripted
}

// TestHostileClient: a connection that sends garbage is closed; the
// others go on.
func TestHostileClient(t *testing.T) {
	host, plugin := channel(t)
	go direct.Serve(t.Context(), plugin, &fake{}, nil)
	c := direct.NewClient(host, 1)
	defer c.Close()
	for _, tc := range []struct {
		name string
		send func(direct.PipeConn)
	}{
		{"oversize frame", func(c direct.PipeConn) { c.Write(lyingFrame(direct.MaxFrame+1, 1, nil)) }},
		{"truncated request", func(c direct.PipeConn) {
			b := direct.EncodeRequest("verify")
			writeFrame(c, 1, b[:len(b)-1])
		}},
		{"unknown method", func(c direct.PipeConn) { writeFrame(c, 1, []byte{99}) }},
		{"half a frame", func(c direct.PipeConn) { c.Write(lyingFrame(50, 1, direct.EncodeRequest("verify"))); c.CloseWrite() }},
		{"half a header", func(c direct.PipeConn) { c.Write(frameOf(1, nil)[:6]); c.CloseWrite() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.Verify(ctxFor(t, 10*time.Second), &verify.Request{}); err != nil {
				t.Fatal(err)
			}
			pc, err := direct.OfferPipes(host)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			tc.send(pc)
			done := make(chan error, 1)
			go func() {
				n, err := pc.Read(make([]byte, 1))
				if err == nil {
					err = fmt.Errorf("read %d bytes", n)
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err != io.EOF {
					t.Fatalf("%v; want the connection closed (EOF)", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("connection still open 10 s after a hostile request")
			}
			if _, err := c.Verify(ctxFor(t, 10*time.Second), &verify.Request{}); err != nil {
				t.Fatalf("another connection after the hostile one: %v", err)
			}
		})
	}
}

// TestBadPipes: an offer of anything but a pipe's read end and another's
// write end is refused, every descriptor it passed closed; the channel
// and the other connections go on.
func TestBadPipes(t *testing.T) {
	host, plugin := channel(t)
	var logs syncbuf.Buffer
	go direct.Serve(t.Context(), plugin, &fake{}, hclog.New(&hclog.LoggerOptions{Output: &logs}))
	c := direct.NewClient(host, 1)
	defer c.Close()
	// pipe returns a new pipe's ends, closed when the test ends.
	pipe := func(t *testing.T) (r, w *os.File) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		return r, w
	}
	file, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	tests := []struct {
		name  string
		files func(t *testing.T) []*os.File
		says  string // logged by the server
	}{
		{"no descriptors", func(*testing.T) []*os.File { return nil }, "0 descriptors passed, want 2 pipe ends"},
		{"one pipe end", func(t *testing.T) []*os.File { r, _ := pipe(t); return []*os.File{r} }, "1 descriptors passed"},
		{"three pipe ends", func(t *testing.T) []*os.File {
			r, w := pipe(t)
			r2, _ := pipe(t)
			return []*os.File{r, w, r2}
		}, "3 descriptors passed"},
		{"ends swapped", func(t *testing.T) []*os.File {
			r, _ := pipe(t)
			_, w := pipe(t)
			return []*os.File{w, r}
		}, "descriptor 0 passed is not a pipe's read end"},
		{"a file for the requests", func(t *testing.T) []*os.File { _, w := pipe(t); return []*os.File{file, w} }, "descriptor 0 passed is not a pipe"},
		{"a socket for the answers", func(t *testing.T) []*os.File {
			r, _ := pipe(t)
			fds, err := socketpair()
			if err != nil {
				t.Fatal(err)
			}
			a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
			t.Cleanup(func() { a.Close(); b.Close() })
			return []*os.File{r, a}
		}, "descriptor 1 passed is not a pipe"},
	}
	if _, err := c.Verify(ctxFor(t, 10*time.Second), &verify.Request{}); err != nil {
		t.Fatal(err)
	}
	before := openFiles(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var fds []int
			for _, f := range tc.files(t) {
				fds = append(fds, int(f.Fd()))
			}
			var oob []byte
			if len(fds) > 0 {
				oob = syscall.UnixRights(fds...)
			}
			if _, _, err := host.WriteMsgUnix([]byte{0}, oob, nil); err != nil {
				t.Fatal(err)
			}
			if !wait.Until(5*time.Second, func() bool { return strings.Contains(logs.String(), tc.says) }) {
				t.Errorf("the server's log does not say %q:\n%s", tc.says, logs.String())
			}
			if _, err := c.Verify(ctxFor(t, 10*time.Second), &verify.Request{}); err != nil {
				t.Fatalf("a connection after the bad one: %v", err)
			}
		})
	}
	// The files the cases opened are closed by now: what is left open was
	// received and kept by the server.
	if after := openFiles(t); after > before {
		t.Errorf("%d descriptors open after the bad connections, %d before", after, before)
	}
}

// openFiles counts this process's open descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

func TestConcurrentCalls(t *testing.T) {
	f := &fake{verify: func(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
		return &verify.Verdict{Allow: true, Reason: req.ServerName}, nil
	}}
	c, _, accepted := serve(t, f, 4)
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 200 {
				name := fmt.Sprintf("g%d-%d", g, i)
				v, err := c.Verify(ctxFor(t, 30*time.Second), &verify.Request{ServerName: name})
				if err != nil || v.Reason != name {
					t.Errorf("Verify(%s) = %+v, %v", name, v, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := accepted.Load(); n < 1 || n > 4 {
		t.Errorf("%d connections opened; want 1 to 4", n)
	}
}

// TestVerifyWithin: its clock starts once the call holds a connection. A
// call that waits longer than its timeout for one is ErrBusy, not a
// deadline; one that holds a connection and gets no answer within its
// timeout ends with context.DeadlineExceeded while the caller's context
// is alive; a call that waited, then was answered in time, succeeds.
func TestVerifyWithin(t *testing.T) {
	started, release := make(chan string, 4), make(chan struct{})
	f := &fake{verify: func(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
		started <- req.ServerName
		if req.ServerName == "hold" {
			<-release
		}
		return &verify.Verdict{Allow: true}, nil
	}}
	c, _, _ := serve(t, f, 1)
	held := make(chan error, 1)
	go func() {
		_, err := c.VerifyWithin(ctxFor(t, time.Minute), &verify.Request{ServerName: "hold"}, time.Minute, time.Minute)
		held <- err
	}()
	<-started
	ctx := ctxFor(t, time.Minute)
	if _, err := c.VerifyWithin(ctx, &verify.Request{ServerName: "busy"}, 100*time.Millisecond, time.Minute); !errors.Is(err, direct.ErrBusy) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a call behind a held connection: %v; want ErrBusy", err)
	}
	waited := make(chan error, 1)
	go func() {
		_, err := c.VerifyWithin(ctx, &verify.Request{ServerName: "waits"}, 5*time.Second, 5*time.Second)
		waited <- err
	}()
	time.Sleep(200 * time.Millisecond) // "waits" queues for the connection
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Errorf("a call that waited, then was answered in time: %v", err)
	}
	hang := make(chan struct{})
	defer close(hang)
	c2, _, _ := serve(t, &fake{verify: func(context.Context, *verify.Request) (*verify.Verdict, error) {
		<-hang
		return &verify.Verdict{Allow: true}, nil
	}}, 1)
	if _, err := c2.VerifyWithin(ctx, &verify.Request{}, time.Minute, 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, direct.ErrBusy) || ctx.Err() != nil {
		t.Errorf("a call the plugin does not answer: %v; want its own deadline, the caller's context alive", err)
	}
}

// TestPanicIsARejection: a built-in verifier that panics (on a peer's
// certificate it did not expect) rejects that peer with an error that
// says so, and tlspin-builtins keeps serving, as core/rpc's server does
// for plugins written with the Go SDK.
func TestPanicIsARejection(t *testing.T) {
	var n atomic.Int32
	f := &fake{verify: func(context.Context, *verify.Request) (*verify.Verdict, error) {
		if n.Add(1) == 1 {
			var names []string
			_ = names[n.Load()] // out of range: the mistake of an author
		}
		return &verify.Verdict{Allow: true}, nil
	}}
	c, _, _ := serve(t, f, 1)
	v, err := c.Verify(ctxFor(t, 10*time.Second), &verify.Request{})
	var remote *direct.RemoteError
	if !errors.As(err, &remote) || !strings.Contains(remote.Message, "verifier panicked: runtime error: index out of range") || v != nil {
		t.Fatalf("a panic in Verify came back as %+v, %v; want a rejection that names the panic", v, err)
	}
	if v, err := c.Verify(ctxFor(t, 10*time.Second), &verify.Request{}); err != nil || !v.Allow {
		t.Fatalf("after a panic, Verify answered %+v, %v; want the verifier still serving", v, err)
	}
}

// TestWaitForConnection: a caller beyond maxConns waits for a connection,
// and gives up when its context ends.
func TestWaitForConnection(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	f := &fake{verify: func(context.Context, *verify.Request) (*verify.Verdict, error) {
		started <- struct{}{}
		<-release
		return &verify.Verdict{Allow: true}, nil
	}}
	c, _, _ := serve(t, f, 1)
	first := make(chan error, 1)
	go func() { _, err := c.Verify(ctxFor(t, 10*time.Second), &verify.Request{}); first <- err }()
	<-started
	ctx := ctxFor(t, 100*time.Millisecond)
	if _, err := c.Verify(ctx, &verify.Request{}); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for a connection") {
		t.Errorf("second caller: %v; want its deadline while waiting for a connection", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

func TestWatch(t *testing.T) {
	n := &notifier{fake: &fake{}, changes: make(chan verify.PolicyChange)}
	c, _, _ := serve(t, n, 1)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := c.WatchPolicy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, reason := range []string{"allowlist reloaded", strings.Repeat("x", 5000)} {
		n.changes <- verify.PolicyChange{Epoch: uint64(i + 1), Reason: reason}
		got := <-ch
		if got.Epoch != uint64(i+1) || got.Reason != verify.Truncate(reason) {
			t.Fatalf("change %d = %.80v", i, got)
		}
	}
	// Calls go on beside the watch.
	if _, err := c.Verify(ctxFor(t, 10*time.Second), &verify.Request{}); err != nil {
		t.Fatal(err)
	}
	if why := c.WatchEnded(); why != nil {
		t.Errorf("WatchEnded = %v while the watch runs", why)
	}
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("a change after ctx ended")
	}
	if why := c.WatchEnded(); why != nil {
		t.Errorf("WatchEnded = %v after the watch's context ended it; want nil", why)
	}

	// A verifier without policy changes: open, silent, closed with ctx.
	c2, _, _ := serve(t, plain{&fake{}}, 1)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	ch2, err := c2.WatchPolicy(ctx2)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := <-ch2; ok {
		t.Fatalf("change %+v from a verifier without policy changes", got)
	}
	if ctx2.Err() == nil {
		t.Error("channel closed before ctx ended")
	}

	// Once Describe has said so, no watch connection is opened at all.
	c3, _, dials := serve(t, plain{&fake{}}, 1)
	if _, err := c3.Describe(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c3.WatchPolicy(t.Context()); !errors.Is(err, verify.ErrNoPolicyWatch) || dials.Load() != 1 {
		t.Fatalf("watch of a verifier described as silent: %v, %d connections; want ErrNoPolicyWatch, 1 connection (Describe's)", err, dials.Load())
	}
	// A notifier's description says it notifies: its watch stays open.
	c4, _, _ := serve(t, n, 1)
	if _, err := c4.Describe(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	ctx4, cancel4 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel4()
	ch4, err := c4.WatchPolicy(ctx4)
	if err != nil {
		t.Fatal(err)
	}
	<-ch4
	if ctx4.Err() == nil {
		t.Error("a notifier's watch closed before ctx ended")
	}
}

// gated is a notifier whose subscription returns only when the test says.
type gated struct {
	*fake
	subscribing chan struct{} // closed when PolicyChanges is called
	subscribe   func()        // lets PolicyChanges return
	subscribed  chan struct{} // closed by subscribe
}

func newGated() *gated {
	g := &gated{fake: &fake{}, subscribing: make(chan struct{}), subscribed: make(chan struct{})}
	g.subscribe = sync.OnceFunc(func() { close(g.subscribed) })
	return g
}

func (g *gated) PolicyChanges(ctx context.Context) <-chan verify.PolicyChange {
	close(g.subscribing)
	<-g.subscribed
	return make(chan verify.PolicyChange)
}

// TestWatchTakesOnlyItsFrames: a policy change that names another
// request than the watch is garbage: the watch ends there, and the
// changes after it are not taken either.
func TestWatchTakesOnlyItsFrames(t *testing.T) {
	change := func(epoch uint64) []byte {
		return direct.EncodePolicyChange(verify.PolicyChange{Epoch: epoch, Reason: "reloaded"})
	}
	c, _, _ := hostile(t, func(conn io.Writer, r *bufio.Reader) {
		writeFrame(conn, 1, direct.EncodeEmpty())
		writeFrame(conn, 1, change(1))
		writeFrame(conn, 2, change(2))
		writeFrame(conn, 1, change(3))
		io.Copy(io.Discard, r)
	})
	ch, err := c.WatchPolicy(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for c := range ch {
		got = append(got, c.Epoch)
	}
	if !reflect.DeepEqual(got, []uint64{1}) {
		t.Fatalf("changes taken: %v; want [1], the watch ended at another request's frame", got)
	}
	if why := c.WatchEnded(); !errors.Is(why, direct.ErrGarbage) || !strings.Contains(why.Error(), "an answer to request 2 where request 1 was asked") {
		t.Errorf("WatchEnded = %v; want the frame under another id, as garbage", why)
	}
}

// TestWatchEnded: once a watch's channel is closed, the client says why:
// the plugin closed the watch, or answered it with something that is not
// a policy change; nothing when the watch's own context ended it.
func TestWatchEnded(t *testing.T) {
	tests := []struct {
		name   string
		script func(io.Writer, *bufio.Reader)
		is     error
		want   string
	}{
		{"the plugin closed it", func(conn io.Writer, r *bufio.Reader) {
			writeFrame(conn, 1, direct.EncodeEmpty())
		}, direct.ErrTransport, "the plugin closed its policy watch"},
		{"a verdict on the watch", func(conn io.Writer, r *bufio.Reader) {
			writeFrame(conn, 1, direct.EncodeEmpty())
			writeFrame(conn, 1, direct.EncodeVerdict(verify.Verdict{Allow: true}))
			io.Copy(io.Discard, r)
		}, direct.ErrGarbage, "an answer that is not a policy change"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, _ := hostile(t, tt.script)
			ch, err := c.WatchPolicy(ctxFor(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			for range ch {
			}
			if why := c.WatchEnded(); !errors.Is(why, tt.is) || !strings.Contains(why.Error(), tt.want) {
				t.Errorf("WatchEnded = %v; want %v saying %q", why, tt.is, tt.want)
			}
		})
	}
}

// TestWatchIsAnsweredOnceSubscribed: the plugin answers a watch request
// only once it has subscribed to the verifier's changes. The host takes
// the answer to mean that every change from then on reaches it; a change
// made between an earlier answer and the subscription (an allowlist
// reloaded) would reach no one, and a verdict cached before it would
// outlive it.
func TestWatchIsAnsweredOnceSubscribed(t *testing.T) {
	g := newGated()
	t.Cleanup(g.subscribe) // Serve waits for its connections
	host, plugin := channel(t)
	go direct.Serve(t.Context(), plugin, g, nil)
	pc, err := direct.OfferPipes(host)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	writeFrame(pc, 7, direct.EncodeRequest("watch"))
	select {
	case <-g.subscribing:
	case <-time.After(10 * time.Second):
		t.Fatal("the plugin did not subscribe to the verifier's changes within 10 s of a watch request")
	}
	if n, err := direct.ReadNow(pc, make([]byte, 64)); n != 0 || err != nil {
		t.Fatalf("the plugin answered the watch before it had subscribed (read %d bytes, %v)", n, err)
	}
	g.subscribe()
	id, got, err := readRequest(bufio.NewReader(pc)) // any frame
	if err != nil || id != 7 || !reflect.DeepEqual(got, direct.EncodeEmpty()) {
		t.Fatalf("answer to the watch once subscribed = %d %q, %v; want 7 %q", id, got, err, direct.EncodeEmpty())
	}
}

func TestShutdown(t *testing.T) {
	c, done, _ := serve(t, &fake{}, 1)
	if err := c.Shutdown(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	serveEnds(t, done, "after shutdown")
	if _, err := c.Verify(ctxFor(t, 10*time.Second), &verify.Request{}); !errors.Is(err, direct.ErrTransport) {
		t.Errorf("Verify after shutdown = %v; want ErrTransport", err)
	}
	c.Close()
	if _, err := c.Verify(ctxFor(t, 10*time.Second), &verify.Request{}); !errors.Is(err, direct.ErrClosed) {
		t.Errorf("Verify after Close = %v; want ErrClosed", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	c, _, _ := serve(b, &fake{verify: func(context.Context, *verify.Request) (*verify.Verdict, error) {
		return &verify.Verdict{Allow: true, Reason: "pinned", Matched: "sha256/x"}, nil
	}}, 1)
	req := &verify.Request{PeerChain: [][]byte{make([]byte, 600)}, ServerName: "api.example", Side: verify.ClientVerifiesServer}
	ctx := context.Background()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err := c.Verify(ctx, req); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
}

// TestVerifierKeepsItsRequests: what a verifier is given is its own to
// keep (tofu keeps a first-use peer for its Commit): later calls on the
// same connection, whose answers the plugin makes in reused buffers, and
// whose host reuses its own, leave every kept request as it was sent, and
// each answer is its own call's.
func TestVerifierKeepsItsRequests(t *testing.T) {
	f := &fake{verify: func(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
		return &verify.Verdict{Allow: true, Matched: "m:" + req.ServerName}, nil
	}}
	c, _, _ := serve(t, f, 1) // one connection: every call reuses it
	var sent []*verify.Request
	for i := range 5 {
		leaf := bytes.Repeat([]byte{byte('a' + i)}, 1300-300*i) // each fits where the last was read
		req := &verify.Request{PeerChain: [][]byte{leaf}, ServerName: fmt.Sprintf("peer%d.example", i), RemoteAddr: fmt.Sprintf("127.0.0.%d:443", i+1), Side: verify.ClientVerifiesServer}
		if i == 2 {
			req.PeerChain = append(req.PeerChain, []byte("an intermediate"))
		}
		v, err := c.Verify(ctxFor(t, 10*time.Second), req)
		if err != nil || v.Matched != "m:"+req.ServerName {
			t.Fatalf("call %d: %+v, %v; want an allow matched by %q", i, v, err, "m:"+req.ServerName)
		}
		sent = append(sent, req)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != len(sent) {
		t.Fatalf("the verifier got %d requests; want %d", len(f.requests), len(sent))
	}
	for i, got := range f.requests {
		if !reflect.DeepEqual(got, sent[i]) {
			t.Errorf("kept request %d is now %+v; want %+v as sent", i, got, sent[i])
		}
	}
}

// TestHostGone: when the host closes its end of the channel (or exits),
// Serve returns, and with it the plugin.
func TestHostGone(t *testing.T) {
	c, done, _ := serve(t, &fake{}, 1)
	if _, err := c.Verify(ctxFor(t, 10*time.Second), &verify.Request{}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	serveEnds(t, done, "once the host closed the channel")
}

// serveEnds waits for Serve's result on done, which must be nil.
func serveEnds(t *testing.T, done <-chan error, after string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v %s; want nil", err, after)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Serve still running 10 s %s", after)
	}
}

// TestOfferNeverWaits: a plugin that stops taking connections fails the
// next offers at once, with ErrTransport; the caller is never blocked on
// the channel, and nothing of the failed offers stays open.
func TestOfferNeverWaits(t *testing.T) {
	host, _ := channel(t) // the plugin's end is never read
	before := openFiles(t)
	res := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < 100000 && err == nil; i++ {
			var pc direct.PipeConn
			if pc, err = direct.OfferPipes(host); err == nil {
				pc.Close()
			}
		}
		res <- err
	}()
	var err error
	select {
	case err = <-res:
	case <-time.After(10 * time.Second):
		t.Fatal("an offer blocked on a channel the plugin does not read")
	}
	if !errors.Is(err, direct.ErrTransport) || !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("offers to a plugin that takes none: %v; want ErrTransport for a full channel", err)
	}
	if after := openFiles(t); after > before {
		t.Errorf("%d descriptors open after the offers, %d before", after, before)
	}
}

// TestCommitAnswerIsChecked: commit is answered with nothing; any other
// answer (a verdict, a description) is garbage, as it is for verify, and
// the host does not take it for a record made.
func TestCommitAnswerIsChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
		want error
	}{
		{"nothing", direct.EncodeEmpty(), nil},
		{"a verdict", direct.EncodeVerdict(verify.Verdict{Allow: true}), direct.ErrGarbage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := hostile(t, answer(tc.body))
			_, err := c.Commit(ctxFor(t, 10*time.Second), &verify.Request{PeerChain: [][]byte{[]byte("leaf")}})
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("Commit = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestUnaskedAnswer: a plugin that answers a request twice has its second
// answer, about one peer, read by the next call on the connection, about
// another. Wherever it lands (with the first, before the next request, or
// ahead of the next call's own answer), it is garbage, never that call's
// verdict (here an allow, after a deny): the call fails, the connection
// is closed, and the next one is new.
func TestUnaskedAnswer(t *testing.T) {
	deny := direct.EncodeVerdict(verify.Verdict{Reason: "not pinned"})
	tests := []struct {
		name string
		// script answers the first request (id 1) twice, deny then allow,
		// and closes sent once the second is sent; read is closed when the
		// host has read the first.
		script func(conn io.Writer, r *bufio.Reader, read <-chan struct{}, sent chan<- struct{})
		early  bool // the second answer is sent before the next request
	}{
		{"with the first", func(conn io.Writer, _ *bufio.Reader, _ <-chan struct{}, sent chan<- struct{}) {
			conn.Write(append(frameOf(1, deny), frameOf(1, allow)...))
			close(sent)
		}, true},
		{"before the next request", func(conn io.Writer, _ *bufio.Reader, read <-chan struct{}, sent chan<- struct{}) {
			writeFrame(conn, 1, deny)
			<-read
			writeFrame(conn, 1, allow)
			close(sent)
		}, true},
		{"ahead of the next answer", func(conn io.Writer, r *bufio.Reader, _ <-chan struct{}, sent chan<- struct{}) {
			writeFrame(conn, 1, deny)
			if id, _, err := readRequest(r); err == nil {
				conn.Write(append(frameOf(1, allow), frameOf(id, deny)...))
			}
			close(sent)
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			read, sent := make(chan struct{}), make(chan struct{})
			c, accepted, scripted := hostile(t, func(conn io.Writer, r *bufio.Reader) {
				tc.script(conn, r, read, sent)
				answerAll(conn, r, deny)
			})
			req := &verify.Request{PeerChain: [][]byte{[]byte("leaf")}}
			if v, err := c.Verify(ctxFor(t, 10*time.Second), req); err != nil || v.Allow {
				t.Fatalf("first Verify = %+v, %v; want the deny", v, err)
			}
			close(read)
			if tc.early {
				<-sent
			}
			other := &verify.Request{PeerChain: [][]byte{[]byte("another leaf")}}
			if v, err := c.Verify(ctxFor(t, 10*time.Second), other); !errors.Is(err, direct.ErrGarbage) || !strings.Contains(err.Error(), "an answer to request 1 where request 2 was asked") {
				t.Fatalf("Verify after a second answer = %+v, %v; want ErrGarbage for an answer to request 1", v, err)
			}
			<-scripted // the connection was closed
			if v, err := c.Verify(ctxFor(t, 10*time.Second), other); err != nil || !v.Allow {
				t.Fatalf("next Verify = %+v, %v; want an allow on a new connection", v, err)
			}
			if n := accepted.Load(); n != 2 {
				t.Errorf("%d connections; want 2", n)
			}
		})
	}
}

// TestNotDelivered: a call whose request reached no plugin (one that had
// closed its end: its process died) says so, as ErrNotDelivered, so that
// the host may ask the plugin that replaces it; a request the plugin may
// have read is never taken for one it did not.
func TestNotDelivered(t *testing.T) {
	// answerOne takes a connection and answers its first request.
	answerOne := func(plugin *net.UnixConn) (direct.PipeConn, *bufio.Reader, error) {
		conn, err := direct.TakePipes(plugin)
		if err != nil {
			return nil, nil, err
		}
		r := bufio.NewReader(conn)
		id, _, err := readRequest(r)
		if err == nil {
			writeFrame(conn, id, allow)
		}
		return conn, r, err
	}
	for _, tt := range []struct {
		name string
		// plugin plays the plugin: it closes ready once the call under
		// test may be made. first says a call must be answered before.
		plugin    func(plugin *net.UnixConn, ready chan<- struct{}) error
		first     bool
		delivered bool
	}{
		{"an idle connection the plugin closed", func(plugin *net.UnixConn, ready chan<- struct{}) error {
			conn, _, err := answerOne(plugin)
			if err == nil {
				conn.Close()
			}
			close(ready)
			return err
		}, true, false},
		{"a new connection on a channel the plugin closed", func(plugin *net.UnixConn, ready chan<- struct{}) error {
			plugin.Close()
			close(ready)
			return nil
		}, false, false},
		{"the request read, then the connection closed", func(plugin *net.UnixConn, ready chan<- struct{}) error {
			conn, r, err := answerOne(plugin)
			close(ready)
			if err == nil {
				readRequest(r)
				conn.Close()
			}
			return err
		}, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			host, plugin := channel(t)
			c := direct.NewClient(host, 1)
			t.Cleanup(func() { c.Close() })
			ready := make(chan struct{})
			go func() {
				if err := tt.plugin(plugin, ready); err != nil {
					t.Errorf("plugin: %v", err)
				}
			}()
			if tt.first {
				if v, err := c.Verify(ctxFor(t, 10*time.Second), &verify.Request{}); err != nil || !v.Allow {
					t.Fatalf("first Verify = %+v, %v; want an allow", v, err)
				}
			}
			<-ready
			_, err := c.Verify(ctxFor(t, 10*time.Second), &verify.Request{PeerChain: [][]byte{[]byte("leaf")}})
			if !errors.Is(err, direct.ErrTransport) || errors.Is(err, direct.ErrNotDelivered) == tt.delivered {
				t.Fatalf("Verify = %v; want ErrTransport, and ErrNotDelivered %v", err, !tt.delivered)
			}
		})
	}
}

// TestServerBoundsItsTexts: a verifier's reason, matched rule, error or
// policy change may quote the peer (a ca verifier's reason names the
// subject and issuer of a 256 KiB leaf, escaped to up to four times its
// size). Sent whole, a text over a frame reached the host as garbage: the
// plugin taken for broken and restarted, every call in flight failed. The
// server cuts each text as the host would (verify.Truncate).
func TestServerBoundsItsTexts(t *testing.T) {
	huge := strings.Repeat("\\x00", direct.MaxFrame/4+1) // over a frame
	f := &fake{verify: func(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
		if req.ServerName == "error" {
			return nil, errors.New(huge)
		}
		return &verify.Verdict{Reason: huge, Matched: huge}, nil
	}}
	n := &notifier{fake: f, changes: make(chan verify.PolicyChange)}
	c, _, accepted := serve(t, n, 1)

	v, err := c.Verify(ctxFor(t, 10*time.Second), &verify.Request{})
	if err != nil || v.Reason != verify.Truncate(huge) || v.Matched != verify.Truncate(huge) {
		t.Fatalf("Verify = %.100v, %.200v; want the reason and the matched rule cut", v, err)
	}
	_, err = c.Verify(ctxFor(t, 10*time.Second), &verify.Request{ServerName: "error"})
	if remote := (*direct.RemoteError)(nil); !errors.As(err, &remote) || remote.Message != verify.Truncate(huge) {
		t.Fatalf("Verify = %.200v; want the verifier's error, cut", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := c.WatchPolicy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n.changes <- verify.PolicyChange{Epoch: 1, Reason: huge}
	if got := <-ch; got.Reason != verify.Truncate(huge) {
		t.Fatalf("change = %.100v; want its reason cut", got)
	}
	if why := c.WatchEnded(); why != nil {
		t.Errorf("the watch ended: %v", why)
	}
	if got := accepted.Load(); got != 2 { // one for the calls, one for the watch
		t.Errorf("%d connections; want 2 (none made again)", got)
	}
}
