package client_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/client"
)

func newCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "test", SANs: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
}

// serveTLS runs handle on every connection of a loopback TLS server.
func serveTLS(t *testing.T, cfg *tls.Config, handle func(*tls.Conn)) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := c.(*tls.Conn)
				tc.SetDeadline(time.Now().Add(10 * time.Second))
				handle(tc)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestSendPrintsTheReply(t *testing.T) {
	big := make([]byte, 4<<20)
	rand.Read(big)
	hold := make(chan struct{})
	defer close(hold)
	tests := []struct {
		name     string
		msg      []byte
		handle   func(*tls.Conn)
		want     []byte
		idleOut  bool
		clientCA bool
		err      error
	}{
		{
			name: "HTTP-style reply, then close",
			msg:  []byte("GET / HTTP/1.0\r\n\r\n"),
			handle: func(c *tls.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					l, err := br.ReadString('\n')
					if err != nil || l == "\r\n" {
						break
					}
				}
				io.WriteString(c, "HTTP/1.0 400 Bad Request\r\nContent-Length: 3\r\n\r\nno\n")
			},
			want: []byte("HTTP/1.0 400 Bad Request\r\nContent-Length: 3\r\n\r\nno\n"),
		},
		{
			name:   "silent server that reads to the end (the recipe's)",
			msg:    []byte("CHUPA ESSA MANGA\n"),
			handle: func(c *tls.Conn) { io.Copy(io.Discard, c); c.Close() },
			want:   nil,
		},
		{
			name: "server that keeps the connection open",
			msg:  []byte("hi\n"),
			handle: func(c *tls.Conn) {
				io.Copy(io.Discard, c)
				io.WriteString(c, "partial")
				<-hold
				c.Close()
			},
			want:    []byte("partial"),
			idleOut: true,
		},
		{
			name: "echo of a message larger than the socket buffers",
			msg:  big,
			handle: func(c *tls.Conn) {
				io.Copy(c, c)
				c.Close()
			},
			want: big,
		},
		{
			name:     "server refusing our certificate after the handshake",
			msg:      []byte("hi\n"),
			clientCA: true,
			handle:   func(c *tls.Conn) { c.Handshake(); c.Close() },
			err:      client.ErrRefused,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{Certificates: []tls.Certificate{newCert(t)}, MinVersion: tls.VersionTLS13}
			if tc.clientCA {
				cfg.ClientAuth = tls.RequireAnyClientCert
				cfg.VerifyConnection = func(tls.ConnectionState) error { return errors.New("not you") }
			}
			addr := serveTLS(t, cfg, tc.handle)
			ccfg := &tls.Config{InsecureSkipVerify: true}
			if tc.clientCA {
				ccfg.Certificates = []tls.Certificate{newCert(t)}
			}
			conn, err := client.Dial(context.Background(), addr, ccfg, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var reply bytes.Buffer
			start := time.Now()
			// Short only where the server holds the connection: a busy
			// machine may stall a large echo longer than that.
			idle := 10 * time.Second
			if tc.idleOut {
				idle = 300 * time.Millisecond
			}
			res, err := client.Send(context.Background(), conn, bytes.NewReader(tc.msg), &reply, idle)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Send: %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if !bytes.Equal(reply.Bytes(), tc.want) {
				t.Errorf("reply %d bytes %q..., want %d bytes", reply.Len(), reply.Bytes()[:min(reply.Len(), 40)], len(tc.want))
			}
			if res.Sent != int64(len(tc.msg)) || res.Received != int64(len(tc.want)) || res.IdleTimedOut != tc.idleOut {
				t.Errorf("result %+v, want sent %d, received %d, idle timeout %v", res, len(tc.msg), len(tc.want), tc.idleOut)
			}
			if d := time.Since(start); tc.idleOut && d > idle+5*time.Second {
				t.Errorf("Send took %s against a server holding the connection, want about the idle timeout %s", d, idle)
			}
		})
	}
}

// TestSendStopsWithItsContext: cancelling the context ends an exchange
// with a server that never closes, whatever the idle timeout.
func TestSendStopsWithItsContext(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{newCert(t)}}, func(c *tls.Conn) { c.Handshake(); <-hold; c.Close() })
	conn, err := client.Dial(context.Background(), addr, &tls.Config{InsecureSkipVerify: true}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = client.Send(ctx, conn, strings.NewReader("hi"), nil, time.Hour)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send: %v, want the context's error", err)
	}
}

// TestSendGivesUpOnAServerThatNeverReads is the attack of a server that
// completes the handshake and then reads nothing: once the message
// outgrows the socket buffers, Send used to block in its write forever,
// since the idle timeout only started after the message. A message whose
// writing makes no progress for the idle timeout now fails, saying so;
// one that makes progress, however slowly its source gives it, does not.
func TestSendGivesUpOnAServerThatNeverReads(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{newCert(t)}}, func(c *tls.Conn) {
		c.Handshake()
		<-hold // never reads
		c.Close()
	})
	conn, err := client.Dial(context.Background(), addr, &tls.Config{InsecureSkipVerify: true}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	done := make(chan error, 1)
	go func() {
		_, err := client.Send(context.Background(), conn, bytes.NewReader(make([]byte, 32<<20)), nil, 200*time.Millisecond)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "read nothing for 200ms") {
			t.Fatalf("Send: %v, want it to say the server read nothing", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ATTACK: Send with a 200ms idle timeout still blocked after 10s on a server that never reads")
	}
}

// slowReader gives its data a byte at a time, pausing before each.
type slowReader struct {
	data  []byte
	pause time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.pause)
	p[0], r.data = r.data[0], r.data[1:]
	return 1, nil
}

// TestSendWaitsForASlowMessage: the idle timeout bounds the server, not
// the message's source (a user typing on standard input).
func TestSendWaitsForASlowMessage(t *testing.T) {
	got := make(chan string, 1)
	addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{newCert(t)}}, func(c *tls.Conn) {
		b, _ := io.ReadAll(c)
		got <- string(b)
		c.Close()
	})
	conn, err := client.Dial(context.Background(), addr, &tls.Config{InsecureSkipVerify: true}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := client.Send(context.Background(), conn, &slowReader{data: []byte("abc"), pause: 150 * time.Millisecond}, nil, 100*time.Millisecond); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if s := <-got; s != "abc" {
		t.Fatalf("the server got %q", s)
	}
}

// TestSendStopsWhileTheMessageIsStillComing: cancelling the context (^C)
// ends Send even while it waits for more of the message from a source
// that no deadline interrupts (a terminal): it used to stay until the
// source gave more or ended.
func TestSendStopsWhileTheMessageIsStillComing(t *testing.T) {
	addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{newCert(t)}}, func(c *tls.Conn) { io.Copy(io.Discard, c); c.Close() })
	conn, err := client.Dial(context.Background(), addr, &tls.Config{InsecureSkipVerify: true}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pr, pw := io.Pipe() // a message that never comes
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := client.Send(ctx, conn, pr, nil, time.Hour)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send: %v, want the context's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Send still waits for the message 10s after its context ended")
	}
}
