package rawio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// unixPair returns both ends of a unix socket connection.
func unixPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan *net.UnixConn, 1)
	go func() {
		c, _ := l.AcceptUnix()
		accepted <- c
	}()
	a, err := net.DialUnix("unix", nil, l.Addr().(*net.UnixAddr))
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestQuietIsRaw(t *testing.T) {
	a, _ := unixPair(t)
	if _, ok := Quiet(a).(*rawIO); !ok {
		t.Errorf("Quiet(unix socket) = %T, want *rawIO", Quiet(a))
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if q, ok := Quiet(r).(*rawIO); !ok || q.rd.linger {
		t.Errorf("Quiet(pipe) = %#v, want a *rawIO that does not linger", Quiet(r))
	}
	if q, ok := QuietLinger(r).(*rawIO); !ok || !q.rd.linger {
		t.Errorf("QuietLinger(pipe) = %#v, want a lingering rawIO", QuietLinger(r))
	}
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if got := Quiet(p); got != p {
		t.Errorf("Quiet(net.Pipe) = %T, want the conn itself (it has no descriptor)", got)
	}
}

// end is one side of a two-way channel of descriptors, read and written
// through Quiet.
type end interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
	Close() error
}

// sockEnd is a unix socket's end.
type sockEnd struct {
	*net.UnixConn
	rw io.ReadWriter
}

func (e sockEnd) Read(p []byte) (int, error)  { return e.rw.Read(p) }
func (e sockEnd) Write(p []byte) (int, error) { return e.rw.Write(p) }

// pipeEnd is a pipe to read and another to write, as a connection's;
// with linger, read as the host reads answers (QuietLinger).
type pipeEnd struct {
	r, w   *os.File
	linger bool
}

func (e pipeEnd) Read(p []byte) (int, error) {
	if e.linger {
		return QuietLinger(e.r).Read(p)
	}
	return Quiet(e.r).Read(p)
}
func (e pipeEnd) Write(p []byte) (int, error)        { return Quiet(e.w).Write(p) }
func (e pipeEnd) SetReadDeadline(t time.Time) error  { return e.r.SetReadDeadline(t) }
func (e pipeEnd) SetWriteDeadline(t time.Time) error { return e.w.SetWriteDeadline(t) }
func (e pipeEnd) Close() error                       { return errors.Join(e.r.Close(), e.w.Close()) }

// transports make both ends of a channel.
var transports = map[string]func(t *testing.T) (end, end){
	"unix socket": func(t *testing.T) (end, end) {
		a, b := unixPair(t)
		return sockEnd{a, Quiet(a)}, sockEnd{b, Quiet(b)}
	},
	"pipes":                  func(t *testing.T) (end, end) { return pipePair(t, false) },
	"pipes, lingering reads": func(t *testing.T) (end, end) { return pipePair(t, true) },
}

// pipePair returns both ends of a channel of two pipes.
func pipePair(t *testing.T, linger bool) (end, end) {
	r1, w1, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	a, b := pipeEnd{r: r1, w: w2, linger: linger}, pipeEnd{r: r2, w: w1, linger: linger}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// rawIO must behave as the os.File or net.Conn it replaces: whole writes
// larger than the buffer, deadlines, EOF and Close.
func TestRawIO(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB: many EAGAINs
	tests := []struct {
		name string
		run  func(t *testing.T, a, b end) error
		want error
	}{
		{"a write larger than the buffer arrives whole", func(t *testing.T, a, b end) error {
			got := make(chan []byte, 1)
			go func() {
				buf := make([]byte, len(big))
				n, _ := io.ReadFull(b, buf)
				got <- buf[:n]
			}()
			if n, err := a.Write(big); err != nil || n != len(big) {
				return errors.Join(err, errors.New("short write"))
			}
			if !bytes.Equal(<-got, big) {
				return errors.New("read back differs from what was written")
			}
			return nil
		}, nil},
		{"a read past the deadline stops", func(t *testing.T, a, b end) error {
			a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := a.Read(make([]byte, 1))
			return err
		}, os.ErrDeadlineExceeded},
		{"a write past the deadline stops", func(t *testing.T, a, b end) error {
			a.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := a.Write(big) // nobody reads b
			return err
		}, os.ErrDeadlineExceeded},
		{"the peer's close is EOF", func(t *testing.T, a, b end) error {
			b.Close()
			_, err := a.Read(make([]byte, 1))
			return err
		}, io.EOF},
		{"a write to a closed peer fails", func(t *testing.T, a, b end) error {
			b.Close()
			_, err := a.Write([]byte("x"))
			return err
		}, syscall.EPIPE},
		{"Close interrupts a blocked read", func(t *testing.T, a, b end) error {
			time.AfterFunc(20*time.Millisecond, func() { a.Close() })
			_, err := a.Read(make([]byte, 1))
			if err == nil {
				return errors.New("read after Close succeeded")
			}
			return nil
		}, nil},
		{"data before the peer's close is read first", func(t *testing.T, a, b end) error {
			b.Write([]byte("last words"))
			b.Close()
			got, err := io.ReadAll(a)
			if string(got) != "last words" {
				return errors.New("read " + string(got))
			}
			return err
		}, nil},
	}
	for name, newEnds := range transports {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				a, b := newEnds(t)
				err := tt.run(t, a, b)
				if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
					t.Errorf("error = %v, want %v", err, tt.want)
				}
			})
		}
	}
}

// TestNoAllocations: a read and a write reuse their state (rawIO's ops),
// allocating nothing: each cost the plugin and the host four or five
// allocations per call before.
func TestNoAllocations(t *testing.T) {
	for _, linger := range []bool{false, true} {
		a, b := pipePair(t, linger)
		w, r := Quiet(a.(pipeEnd).w), Quiet(b.(pipeEnd).r)
		if linger {
			r = QuietLinger(b.(pipeEnd).r)
		}
		msg, buf := []byte("a frame of sixteen"), make([]byte, 64)
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := w.Write(msg); err != nil {
				t.Fatal(err)
			}
			if n, err := r.Read(buf); err != nil || n != len(msg) {
				t.Fatalf("read %d bytes, %v; want %d", n, err, len(msg))
			}
		})
		if allocs != 0 {
			t.Errorf("linger %v: a write and a read allocate %v times; want 0", linger, allocs)
		}
	}
}

// TestConcurrentUse: reads, and writes, of one rawIO from many goroutines
// at once each keep their own bytes and counts: a call that finds the
// reused state taken by another makes its own. Records are written and
// read whole (16 bytes, under PIPE_BUF, so the pipe keeps each in one
// piece); every one must come back once, unchanged.
func TestConcurrentUse(t *testing.T) {
	const writers, each, size = 8, 500, 16
	for _, linger := range []bool{false, true} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		qr, qw := Quiet(r), Quiet(w)
		if linger {
			qr = QuietLinger(r)
		}
		got := make(chan string, writers*each)
		readErr := make(chan error, writers)
		for range writers {
			go func() {
				buf := make([]byte, size)
				for range each {
					n, err := qr.Read(buf)
					if err != nil || n != size {
						readErr <- fmt.Errorf("read %d bytes, %v; want %d", n, err, size)
						return
					}
					got <- string(buf)
				}
				readErr <- nil
			}()
		}
		var wg sync.WaitGroup
		for g := range writers {
			wg.Go(func() {
				for i := range each {
					rec := fmt.Sprintf("w%03d-rec%08d", g, i)
					if n, err := qw.Write([]byte(rec)); err != nil || n != size {
						t.Errorf("write = %d, %v", n, err)
						return
					}
				}
			})
		}
		wg.Wait()
		for range writers {
			if err := <-readErr; err != nil {
				t.Fatal(err)
			}
		}
		close(got)
		seen := map[string]bool{}
		for rec := range got {
			if seen[rec] {
				t.Fatalf("linger %v: record %q read twice", linger, rec)
			}
			seen[rec] = true
		}
		for g := range writers {
			for i := range each {
				if rec := fmt.Sprintf("w%03d-rec%08d", g, i); !seen[rec] {
					t.Fatalf("linger %v: record %q never read (%d of %d read)", linger, rec, len(seen), writers*each)
				}
			}
		}
		r.Close()
		w.Close()
	}
}
