package direct

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
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

func TestQuietIsRawOnSockets(t *testing.T) {
	a, _ := unixPair(t)
	if _, ok := quiet(a).(rawIO); !ok {
		t.Errorf("quiet(unix socket) = %T, want rawIO", quiet(a))
	}
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if got := quiet(p); got != p {
		t.Errorf("quiet(net.Pipe) = %T, want the conn itself (it has no descriptor)", got)
	}
}

// rawIO must behave as the net.Conn it replaces: whole writes larger
// than the socket's buffer, the connection's deadlines, EOF and Close.
func TestRawIO(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB: many EAGAINs
	tests := []struct {
		name string
		run  func(t *testing.T, a, b *net.UnixConn) error
		want error
	}{
		{"a write larger than the buffer arrives whole", func(t *testing.T, a, b *net.UnixConn) error {
			got := make(chan []byte, 1)
			go func() {
				buf := make([]byte, len(big))
				n, _ := io.ReadFull(quiet(b), buf)
				got <- buf[:n]
			}()
			if n, err := quiet(a).Write(big); err != nil || n != len(big) {
				return errors.Join(err, errors.New("short write"))
			}
			if !bytes.Equal(<-got, big) {
				return errors.New("read back differs from what was written")
			}
			return nil
		}, nil},
		{"a read past the deadline stops", func(t *testing.T, a, b *net.UnixConn) error {
			a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := quiet(a).Read(make([]byte, 1))
			return err
		}, os.ErrDeadlineExceeded},
		{"a write past the deadline stops", func(t *testing.T, a, b *net.UnixConn) error {
			a.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := quiet(a).Write(big) // nobody reads b
			return err
		}, os.ErrDeadlineExceeded},
		{"the peer's close is EOF", func(t *testing.T, a, b *net.UnixConn) error {
			b.Close()
			_, err := quiet(a).Read(make([]byte, 1))
			return err
		}, io.EOF},
		{"a write to a closed peer fails", func(t *testing.T, a, b *net.UnixConn) error {
			b.Close()
			_, err := quiet(a).Write([]byte("x"))
			return err
		}, syscall.EPIPE},
		{"Close interrupts a blocked read", func(t *testing.T, a, b *net.UnixConn) error {
			time.AfterFunc(20*time.Millisecond, func() { a.Close() })
			_, err := quiet(a).Read(make([]byte, 1))
			return err
		}, net.ErrClosed},
		{"data before the peer's close is read first", func(t *testing.T, a, b *net.UnixConn) error {
			b.Write([]byte("last words"))
			b.Close()
			got, err := io.ReadAll(quiet(a))
			if string(got) != "last words" {
				return errors.New("read " + string(got))
			}
			return err
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := unixPair(t)
			err := tt.run(t, a, b)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
}
