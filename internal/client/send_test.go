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
			const idle = 300 * time.Millisecond
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
