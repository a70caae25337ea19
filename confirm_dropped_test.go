package tlspin_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/core/pintls"
)

// TestConfirmAfterItsRecordWasDropped: tofu's first use is recorded at
// Confirm, from a pending record that a server's set keeps for a minute at
// most, and for MaxPending connections at most. A Confirm that came after
// its connection's record was dropped (too many verified clients waiting,
// or too late) used to return nil: the server used a connection that
// tofu had allowed only on condition of a record never made. It is a
// rejection now (ErrVerifierFailed: trying again may succeed), and
// nothing is recorded; a client that another verifier allows (require
// any) does not need the record and is served.
func TestConfirmAfterItsRecordWasDropped(t *testing.T) {
	srv, client := newIdentity("server"), newIdentity("client")
	overflow := func(v *tlspin.Verifiers, _ *atomic.Int64) { tlspin.FloodPending(v, pintls.MaxPending) }
	expire := func(v *tlspin.Verifiers, clock *atomic.Int64) {
		clock.Add(int64(time.Minute + time.Second))
		tlspin.FloodPending(v, 1) // the set prunes when it grows
	}
	kept := func(*tlspin.Verifiers, *atomic.Int64) {}
	for _, tt := range []struct {
		name     string
		pin      bool // spkipin allows the client too, with require any
		drop     func(*tlspin.Verifiers, *atomic.Int64)
		ok       bool
		recorded bool
	}{
		{"kept", false, kept, true, true},
		{"dropped by overflow", false, overflow, false, false},
		{"dropped after a minute", false, expire, false, false},
		{"require any and another verifier allows: overflow", true, overflow, true, false},
		{"require any and another verifier allows: a minute", true, expire, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pins := filepath.Join(t.TempDir(), "known_pins")
			specs := []string{"tofu:file=" + pins}
			var opts []tlspin.Option
			if tt.pin {
				specs = append(specs, "spkipin:pin="+client.spki)
				opts = append(opts, tlspin.WithRequire(tlspin.RequireAny))
			}
			v := start(t, specs, opts...)
			var clock atomic.Int64
			base := time.Unix(1_000_000, 0)
			tlspin.SetPendingClock(v, func() time.Time { return base.Add(time.Duration(clock.Load())) })
			ln := listen(t)
			confirmed := make(chan error, 1)
			go func() {
				raw, err := ln.Accept()
				if err != nil {
					confirmed <- err
					return
				}
				defer raw.Close()
				raw.SetDeadline(time.Now().Add(10 * time.Second))
				c := tls.Server(raw, v.ServerConfig(srv.cert))
				if err := c.Handshake(); err != nil {
					confirmed <- err
					return
				}
				tt.drop(v, &clock)
				confirmed <- v.Confirm(context.Background(), c)
			}()
			d := &net.Dialer{Timeout: 10 * time.Second}
			c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{client.cert}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = <-confirmed
			b, _ := os.ReadFile(pins)
			if rec := strings.Contains(string(b), strings.TrimPrefix(client.spki, "sha256//")); rec != tt.recorded {
				t.Errorf("recorded %v, want %v:\n%s", rec, tt.recorded, b)
			}
			if tt.ok {
				if err != nil {
					t.Fatalf("Confirm: %v", err)
				}
				return
			}
			var re *tlspin.RejectionError
			if err == nil {
				t.Fatal("ATTACK: Confirm let in a first use whose record was dropped")
			}
			if !errors.As(err, &re) || !errors.Is(err, tlspin.ErrVerifierFailed) || errors.Is(err, tlspin.ErrRejected) {
				t.Fatalf("Confirm: %v; want a *RejectionError matching ErrVerifierFailed", err)
			}
			if re.Peer != "client" || re.PeerSPKI != client.spki || !strings.Contains(err.Error(), "dropped") {
				t.Errorf("rejection %+v: %v", re, err)
			}
		})
	}
}
