package pintls_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/pintls"
	"github.com/tlspin/tlspin/core/verify"
)

// firstUse allows every peer only on condition of recording it after the
// handshake, as tofu does on first contact.
type firstUse struct{ commits int }

func (f *firstUse) Verify(context.Context, *verify.Request) (*verify.Verdict, error) {
	return &verify.Verdict{Allow: true, Commit: true, Reason: "first use"}, nil
}

// committingFirstUse is firstUse with the Commit its verdicts ask for.
type committingFirstUse struct{ firstUse }

func (f *committingFirstUse) Commit(context.Context, *verify.Request) (*verify.CommitResponse, error) {
	f.commits++
	return &verify.CommitResponse{}, nil
}

// TestFirstUseWithoutAPendingIsRejected: a verdict that allows the peer
// only if it is recorded after the handshake (tofu's first use) does not
// allow it through a configuration that cannot record it: no Pending (the
// zero Options, ServerConfig), or a decider that cannot commit. Such an
// allow used to hold with nothing recorded, so every new peer was a first
// use, for ever: the verifier enforced nothing.
func TestFirstUseWithoutAPendingIsRejected(t *testing.T) {
	cert := serverCert(t)
	addr := ticketServer(t, cert)
	committing := &committingFirstUse{}
	var pending pintls.Pending
	tests := []struct {
		name  string
		d     verify.Decider
		o     pintls.Options
		allow bool
	}{
		{"no Pending", committing, pintls.Options{Timeout: time.Second}, false},
		{"a decider that cannot commit", &firstUse{}, pintls.Options{Timeout: time.Second, Pending: &pending}, false},
		{"a Pending", committing, pintls.Options{Timeout: time.Second, Pending: &pending}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := handshake(addr, pintls.ClientConfig(tt.d, "", addr, nil, tt.o))
			if tt.allow {
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				return
			}
			if !errors.Is(err, verify.ErrRejected) || !strings.Contains(err.Error(), "record") {
				t.Fatalf("handshake: %v; want a rejection saying the peer cannot be recorded", err)
			}
		})
	}
	if err := pending.Commit(context.Background()); err != nil || committing.commits != 1 {
		t.Errorf("commit: %v, %d commits; want the allowed one's", err, committing.commits)
	}

	t.Run("ServerConfig", func(t *testing.T) {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", pintls.ServerConfig(cert, committing, pintls.Options{Timeout: time.Second}))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		serr := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				serr <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			serr <- c.(*tls.Conn).Handshake()
		}()
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
		if err == nil {
			c.Read(make([]byte, 1)) // TLS 1.3: the server's verdict comes after the client's handshake
			c.Close()
		}
		if err := <-serr; !errors.Is(err, verify.ErrRejected) || !strings.Contains(err.Error(), "record") {
			t.Fatalf("server handshake: %v; want a rejection saying the client cannot be recorded", err)
		}
	})
}
