package tlspin_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspin/tlspin"
)

// TestListenRefusesAnIncompleteCertificate: Listen given a certificate it
// cannot present fails at once, saying so, rather than listen and fail
// every handshake ("handshake failure" on the client's side).
func TestListenRefusesAnIncompleteCertificate(t *testing.T) {
	srv := newIdentity("server")
	v := start(t, []string{"spkipin:pin=" + srv.spki})
	tests := []struct {
		name string
		cert tls.Certificate
		says string
	}{
		{"zero value", tls.Certificate{}, "no certificate"},
		{"no private key", tls.Certificate{Certificate: srv.cert.Certificate}, "no private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := v.Listen("tcp", "127.0.0.1:0", tt.cert)
			if err == nil {
				ln.Close()
				t.Fatal("Listen accepted it")
			}
			if !strings.HasPrefix(err.Error(), "tlspin: listen") || !strings.Contains(err.Error(), tt.says) || !errors.Is(err, tlspin.ErrBadArgument) {
				t.Errorf("err = %v; want tlspin: listen ...: %s, matching ErrBadArgument", err, tt.says)
			}
		})
	}
}

// TestDialRefusesNetworksOtherThanTCP: Dial speaks TLS over TCP only; any
// other network is refused by name before anything is sent, rather than a
// handshake tried over UDP or a unix path taken for a bad HOST:PORT.
func TestDialRefusesNetworksOtherThanTCP(t *testing.T) {
	srv := newIdentity("server")
	addr := tlsServer(t, srv)
	v := start(t, []string{"spkipin:pin=" + srv.spki})
	for _, network := range []string{"udp", "unix", "ip4", ""} {
		t.Run(network, func(t *testing.T) {
			c, err := v.Dial(context.Background(), network, addr)
			if err == nil {
				c.Close()
				t.Fatal("Dial connected")
			}
			if !strings.HasPrefix(err.Error(), "tlspin: dial") || !strings.Contains(err.Error(), `network "`+network+`"`) || !errors.Is(err, tlspin.ErrBadArgument) {
				t.Errorf("err = %v; want tlspin: dial ...: network %q ..., matching ErrBadArgument", err, network)
			}
		})
	}
	c, err := v.Dial(context.Background(), "tcp4", addr)
	if err != nil {
		t.Fatalf("tcp4: %v", err)
	}
	c.Close()
}

// TestListenRefusesNetworksOtherThanTCP: Listen serves TLS over TCP only,
// as Dial dials it. Any other network is refused by name before anything
// is bound: over a unix socket every client has the same (empty) address,
// so tofu and the per-address bounds of the listener would take all
// clients for one, and over UDP or raw IP a TLS stream cannot run.
func TestListenRefusesNetworksOtherThanTCP(t *testing.T) {
	srv := newIdentity("server")
	v := start(t, []string{"spkipin:pin=" + srv.spki})
	dir := t.TempDir()
	tests := []struct{ network, addr string }{
		{"unix", filepath.Join(dir, "unix.sock")},
		{"unixpacket", filepath.Join(dir, "unixpacket.sock")},
		{"unixgram", filepath.Join(dir, "unixgram.sock")},
		{"udp", "127.0.0.1:0"},
		{"udp4", "127.0.0.1:0"},
		{"ip", "127.0.0.1"},
		{"ip4:tcp", "127.0.0.1"},
		{"TCP", "127.0.0.1:0"},
		{"", "127.0.0.1:0"},
	}
	for _, tt := range tests {
		t.Run(tt.network, func(t *testing.T) {
			ln, err := v.Listen(tt.network, tt.addr, srv.cert)
			if err == nil {
				ln.Close()
				t.Fatalf("Listen(%q, %q) listens on %s", tt.network, tt.addr, ln.Addr())
			}
			if !strings.HasPrefix(err.Error(), "tlspin: listen") || !strings.Contains(err.Error(), `network "`+tt.network+`": want tcp, tcp4 or tcp6`) || !errors.Is(err, tlspin.ErrBadArgument) {
				t.Errorf("err = %v; want tlspin: listen ...: network %q: want tcp, tcp4 or tcp6, matching ErrBadArgument", err, tt.network)
			}
			if strings.HasPrefix(tt.network, "unix") {
				if _, err := os.Lstat(tt.addr); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Listen refused, but left a socket file: %v", err)
				}
			}
		})
	}
	for _, ok := range []struct{ network, addr string }{{"tcp", "127.0.0.1:0"}, {"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		if ok.network == "tcp6" {
			if probe, err := net.Listen("tcp6", ok.addr); err != nil {
				t.Logf("no IPv6 loopback here: %v", err)
				continue
			} else {
				probe.Close()
			}
		}
		ln, err := v.Listen(ok.network, ok.addr, srv.cert)
		if err != nil {
			t.Errorf("Listen(%q, %q): %v", ok.network, ok.addr, err)
			continue
		}
		ln.Close()
	}
}

// TestBadArgumentIsNotANetworkError: an address without a port is the
// caller's mistake (ErrBadArgument); a port nobody listens on is the
// network's answer, a *net.OpError, which does not match it.
func TestBadArgumentIsNotANetworkError(t *testing.T) {
	srv := newIdentity("server")
	v := start(t, []string{"spkipin:pin=" + srv.spki})
	_, err := v.Dial(context.Background(), "tcp", "127.0.0.1")
	if !errors.Is(err, tlspin.ErrBadArgument) || !strings.Contains(err.Error(), "want HOST:PORT") {
		t.Errorf("Dial without a port: %v; want ErrBadArgument saying HOST:PORT", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	_, err = v.Dial(context.Background(), "tcp", closed)
	var op *net.OpError
	if err == nil || errors.Is(err, tlspin.ErrBadArgument) || !errors.As(err, &op) {
		t.Errorf("Dial to a closed port: %v; want a *net.OpError, not ErrBadArgument", err)
	}
}

// TestListenRefusesAnAddressWithoutAPort: Listen given an address without
// a port refuses it up front with ErrBadArgument, quoting it, as Dial
// does; it used to pass it to net.Listen, which fails with a network
// error (a *net.OpError, "missing port") for a host, and for "" listens on
// every interface of the machine, on a port chosen at random.
func TestListenRefusesAnAddressWithoutAPort(t *testing.T) {
	srv := newIdentity("server")
	v := start(t, []string{"spkipin:pin=" + srv.spki})
	for _, addr := range []string{"127.0.0.1", "localhost", "[::1]", "::1", ""} {
		t.Run(addr, func(t *testing.T) {
			ln, err := v.Listen("tcp", addr, srv.cert)
			if err == nil {
				ln.Close()
				t.Fatalf("Listen(%q) listens on %s", addr, ln.Addr())
			}
			if !errors.Is(err, tlspin.ErrBadArgument) || !strings.HasPrefix(err.Error(), "tlspin: listen") ||
				!strings.Contains(err.Error(), `"`+addr+`"`) || !strings.Contains(err.Error(), "want HOST:PORT") {
				t.Errorf("err = %v; want tlspin: listen %q: want HOST:PORT ..., matching ErrBadArgument", err, addr)
			}
		})
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "127.0.0.1:"} {
		ln, err := v.Listen("tcp", addr, srv.cert)
		if err != nil {
			t.Errorf("Listen(%q): %v", addr, err)
			continue
		}
		ln.Close()
	}
}
