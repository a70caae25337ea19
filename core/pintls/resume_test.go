package pintls_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/core/verify"
)

// decider is a scripted verifier that counts its calls.
type decider struct {
	calls   atomic.Int32
	resumed atomic.Int32
	allow   atomic.Bool
	err     error
	delay   time.Duration
	nilV    bool
}

func (d *decider) Verify(ctx context.Context, req *verify.Request) (*verify.Verdict, error) {
	d.calls.Add(1)
	if req.DidResume {
		d.resumed.Add(1)
	}
	if d.delay > 0 {
		select {
		case <-time.After(d.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if d.nilV {
		return nil, nil
	}
	return &verify.Verdict{Allow: d.allow.Load(), Reason: "scripted"}, nil
}

func serverCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "srv", SANs: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
}

// ticketServer is a plain crypto/tls server with session tickets on, so
// that a client can resume.
func ticketServer(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func handshake(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	// Read once so that the client processes the session ticket.
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	c.Read(make([]byte, 1))
	return c.ConnectionState(), nil
}

// TestVerifiesResumedSessions: a resumed session is verified again, and a
// verifier that stops allowing the peer stops the resumption too.
func TestVerifiesResumedSessions(t *testing.T) {
	addr := ticketServer(t, serverCert(t))
	d := &decider{}
	d.allow.Store(true)
	cfg := pintls.ClientConfig(d, "", addr, nil, pintls.Options{Timeout: time.Second})
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)

	if _, err := handshake(addr, cfg); err != nil {
		t.Fatal(err)
	}
	cs, err := handshake(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !cs.DidResume {
		t.Fatal("second handshake did not resume; the test proves nothing")
	}
	if d.calls.Load() != 2 || d.resumed.Load() != 1 {
		t.Fatalf("verifier called %d times (%d resumed), want 2 (1 resumed)", d.calls.Load(), d.resumed.Load())
	}
	d.allow.Store(false)
	if _, err := handshake(addr, cfg); !errors.Is(err, verify.ErrRejected) {
		t.Fatalf("resumption after the verifier changed its mind: err %v, want rejection", err)
	}
}

// TestFailsClosed: anything but an explicit allow rejects the peer.
func TestFailsClosed(t *testing.T) {
	addr := ticketServer(t, serverCert(t))
	tests := []struct {
		name string
		d    *decider
		want string
	}{
		{"reject", &decider{}, "scripted"},
		{"error", &decider{err: errors.New("plugin exploded")}, "plugin exploded"},
		{"no verdict", &decider{nilV: true}, "no verdict"},
		{"timeout", &decider{delay: 5 * time.Second}, "no verdict within 200ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pintls.ClientConfig(tc.d, "", addr, nil, pintls.Options{Timeout: 200 * time.Millisecond})
			start := time.Now()
			_, err := handshake(addr, cfg)
			if !errors.Is(err, verify.ErrRejected) {
				t.Fatalf("err = %v, want a rejection", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %q does not say %q", err, tc.want)
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("rejection took %s", time.Since(start))
			}
		})
	}
}
