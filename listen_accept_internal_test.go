package tlspin

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/certs"
)

// flakyListener returns errs from Accept, one per call, before it accepts
// from the listener it wraps.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	errs  []error
	calls int
}

func (f *flakyListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	f.calls++
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

func acceptErr(err error) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: err}
}

// testCert makes a self-signed certificate for 127.0.0.1 and returns it
// with its SPKI pin.
func testCert(t *testing.T, cn string) (tls.Certificate, string) {
	t.Helper()
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: cn, SANs: []string{"127.0.0.1"}, Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}, "sha256//" + base64.StdEncoding.EncodeToString(sum[:])
}

// acceptResult is what one Accept returned.
type acceptResult struct {
	c   net.Conn
	err error
}

func acceptAsync(ln net.Listener) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		c, err := ln.Accept()
		ch <- acceptResult{c, err}
	}()
	return ch
}

// TestListenAcceptErrors: an accept error other than a closed listener
// (out of file descriptors, a connection aborted before accept) is
// retried, and the next client is served; a closed listener ends Accept
// for good.
func TestListenAcceptErrors(t *testing.T) {
	srvCert, _ := testCert(t, "server")
	cliCert, cliPin := testCert(t, "client")
	v, err := StartWith(context.Background(), []string{"spkipin:pin=" + cliPin}, WithLogger(hclog.NewNullLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })

	emfile := acceptErr(os.NewSyscallError("accept4", syscall.EMFILE))
	aborted := acceptErr(os.NewSyscallError("accept4", syscall.ECONNABORTED))
	tests := []struct {
		name   string
		errs   []error
		closed bool // Accept must fail with net.ErrClosed, no client served
	}{
		{"no error", nil, false},
		{"out of file descriptors, then a client", []error{emfile, emfile, emfile, emfile}, false},
		{"a connection aborted before accept", []error{aborted}, false},
		{"the listener closed underneath", []error{acceptErr(net.ErrClosed)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			fl := &flakyListener{Listener: inner, errs: tt.errs}
			ln := v.listen(fl, srvCert)
			defer ln.Close()
			accepted := acceptAsync(ln)

			if tt.closed {
				select {
				case r := <-accepted:
					if !errors.Is(r.err, net.ErrClosed) {
						t.Fatalf("Accept: %v, %v; want an error matching net.ErrClosed", r.c, r.err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("Accept did not return after the listener closed")
				}
				if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
					t.Errorf("second Accept: %v; want it to fail as well", err)
				}
				return
			}

			cfg := &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cliCert}}
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", inner.Addr().String(), cfg)
			if err != nil {
				t.Fatalf("client: %v", err)
			}
			io.WriteString(c, "hello")
			c.Close()
			select {
			case r := <-accepted:
				if r.err != nil {
					t.Fatalf("Accept after %d transient errors: %v", len(tt.errs), r.err)
				}
				defer r.c.Close()
				b, err := io.ReadAll(r.c)
				if err != nil || string(b) != "hello" {
					t.Fatalf("read %q, %v; want hello", b, err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the client was not served")
			}
			fl.mu.Lock()
			left := len(fl.errs)
			fl.mu.Unlock()
			if left != 0 {
				t.Errorf("%d injected errors never returned by the inner Accept", left)
			}
		})
	}
}

// TestListenCloseDuringBackoff: Close ends a listener that is waiting to
// retry an accept error, and Accept then fails.
func TestListenCloseDuringBackoff(t *testing.T) {
	srvCert, _ := testCert(t, "server")
	_, cliPin := testCert(t, "client")
	v, err := StartWith(context.Background(), []string{"spkipin:pin=" + cliPin}, WithLogger(hclog.NewNullLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, 1000)
	for i := range errs {
		errs[i] = acceptErr(os.NewSyscallError("accept4", syscall.EMFILE))
	}
	fl := &flakyListener{Listener: inner, errs: errs}
	ln := v.listen(fl, srvCert)
	accepted := acceptAsync(ln)
	ln.Close()
	select {
	case r := <-accepted:
		if !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, %v; want net.ErrClosed", r.c, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}
