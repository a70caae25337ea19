package tlspin_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// revocation is what Watch's revoked got, and how many of its rounds had
// ended then: the round under way has ended once WatchPasses is above it.
type revocation struct {
	err    error
	passes uint64
}

// TestWatch is the attack of a peer whose pin the operator removed while
// its connection stays open: a TLS connection is verified once, at its
// handshake, so without Watch it would keep its tunnel for as long as it
// likes. Each case starts with three live peers allowed, a, b and c,
// changes the policy, which always removes c (so that the round of
// questions the change caused can be waited for), and says what a and b
// must be revoked with, if they are.
func TestWatch(t *testing.T) {
	a, b, c := newIdentity("a"), newIdentity("b"), newIdentity("c")
	line := func(id identity) string { return "spki:" + strings.TrimPrefix(id.spki, "sha256//") + "\n" }
	for _, tt := range []struct {
		name string
		// change edits the policy, given the allowlist file and a file
		// whose presence makes misbehave crash.
		change func(t *testing.T, list, crash string)
		// a, b: what their revocation must match; nil: kept.
		a, b error
		opts []tlspin.Option
	}{
		{"a removed from the allowlist", func(t *testing.T, list, _ string) { write(t, list, line(b)) }, tlspin.ErrRejected, nil, nil},
		{"the allowlist rewritten with a and b", func(t *testing.T, list, _ string) { write(t, list, line(b)+line(a)) }, nil, nil, nil},
		// misbehave allows until the file exists, then crashes: the
		// allowlist's change has it asked, and its failure revokes every
		// connection, failing closed.
		{"a verifier failing when asked again", func(t *testing.T, list, crash string) {
			write(t, crash, "")
			write(t, list, line(a)+line(b))
		}, tlspin.ErrVerifierFailed, tlspin.ErrVerifierFailed, nil},
		// With --require any, as at a handshake: the allowlist still
		// allows a and b, so misbehave's failure makes no difference.
		{"a verifier failing when asked again with require any", func(t *testing.T, list, crash string) {
			write(t, crash, "")
			write(t, list, line(a)+line(b))
		}, nil, nil, []tlspin.Option{tlspin.WithRequire(tlspin.RequireAny)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			list, crash := filepath.Join(dir, "pins"), filepath.Join(dir, "crash")
			write(t, list, line(a)+line(b)+line(c))
			v := start(t, []string{"allowlist:file=" + list, "misbehave:mode=crash-if-file,file=" + crash}, append(tt.opts, tlspin.WithPluginDirs(misbehaveDir(t)))...)
			watch := func(id identity) chan revocation {
				ch := make(chan revocation, 2)
				stop := v.Watch(tlspin.Peer{Chain: id.cert.Certificate, Client: true, Addr: "127.0.0.1:1"}, time.Now(), func(err error) {
					ch <- revocation{err, tlspin.WatchPasses(v)}
				})
				t.Cleanup(stop)
				return ch
			}
			ra, rb, rc := watch(a), watch(b), watch(c)
			tt.change(t, list, crash)
			var rev revocation
			select {
			case rev = <-rc:
			case <-time.After(10 * time.Second):
				t.Fatal("c, removed from the allowlist, was not revoked")
			}
			// Where misbehave fails, it may do so before the allowlist's
			// reload is seen.
			_, statErr := os.Stat(crash)
			fails := statErr == nil
			if !errors.Is(rev.err, tlspin.ErrRejected) && !(fails && errors.Is(rev.err, tlspin.ErrVerifierFailed)) {
				t.Fatalf("c revoked with %v", rev.err)
			}
			// The round that revoked c asked about a and b too.
			for tlspin.WatchPasses(v) <= rev.passes {
				time.Sleep(10 * time.Millisecond)
			}
			for _, p := range []struct {
				name string
				ch   chan revocation
				want error
				id   identity
			}{{"a", ra, tt.a, a}, {"b", rb, tt.b, b}} {
				select {
				case r := <-p.ch:
					if p.want == nil || !errors.Is(r.err, p.want) || p.want == tlspin.ErrRejected && errors.Is(r.err, tlspin.ErrVerifierFailed) {
						t.Fatalf("%s revoked with %v, want %v", p.name, r.err, p.want)
					}
					var re *tlspin.RejectionError
					if !errors.As(r.err, &re) || !strings.Contains(r.err.Error(), "asked again after a verifier's policy changed") {
						t.Fatalf("%s revoked with %v (%T), want a *RejectionError that says why it was asked again", p.name, r.err, r.err)
					}
					if re.PeerSPKI != p.id.spki {
						t.Fatalf("%s's revocation names %q, want its key %q", p.name, re.PeerSPKI, p.id.spki)
					}
				default:
					if p.want != nil {
						t.Fatalf("%s kept, want a revocation matching %v", p.name, p.want)
					}
				}
			}
		})
	}
}

// TestWatchAfterAChange: a pin removed while the handshake that it
// allowed was finishing is not missed. The decision began before the
// change; the connection is watched after it.
func TestWatchAfterAChange(t *testing.T) {
	a := newIdentity("a")
	list := filepath.Join(t.TempDir(), "pins")
	write(t, list, "spki:"+strings.TrimPrefix(a.spki, "sha256//")+"\n")
	v := start(t, []string{"allowlist:file=" + list})
	peer := tlspin.Peer{Chain: a.cert.Certificate, Client: true, Addr: "127.0.0.1:1"}
	decided := time.Now()
	write(t, list, "# nobody\n")
	waitRejected(t, v, peer)
	revoked := make(chan error, 1)
	defer v.Watch(peer, decided, func(err error) { revoked <- err })()
	select {
	case err := <-revoked:
		if !errors.Is(err, tlspin.ErrRejected) {
			t.Fatalf("revoked with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a peer allowed before the change, watched after it, was not asked again")
	}
}

// waitRejected waits until the verifiers reject peer: the allowlist's
// reload has been seen.
func waitRejected(t *testing.T, v *tlspin.Verifiers, peer tlspin.Peer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := v.Check(t.Context(), peer)
		if errors.Is(err, tlspin.ErrRejected) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the allowlist was not reloaded: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDialAndListenRecheck: the connections of Listen and Dial are
// watched by default. The peer's pin removed from the allowlist, the
// connection is closed underneath the *tls.Conn, with a warning naming
// the peer; WithoutRecheck keeps it open.
func TestDialAndListenRecheck(t *testing.T) {
	srv, cli := newIdentity("server"), newIdentity("client")
	line := func(id identity) string { return "spki:" + strings.TrimPrefix(id.spki, "sha256//") + "\n" }
	for _, tt := range []struct {
		name string
		opts []tlspin.Option
		// listen: the verifiers serve on Listen, and the client is
		// removed; otherwise they Dial, and the server is removed.
		listen, revoked bool
	}{
		{"Listen", nil, true, true},
		{"Dial", nil, false, true},
		{"Listen WithoutRecheck", []tlspin.Option{tlspin.WithoutRecheck()}, true, false},
		{"Dial WithoutRecheck", []tlspin.Option{tlspin.WithoutRecheck()}, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			peer := srv
			if tt.listen {
				peer = cli
			}
			list := filepath.Join(t.TempDir(), "pins")
			write(t, list, line(peer))
			logs := &syncbuf.Buffer{}
			v := start(t, []string{"allowlist:file=" + list}, append(tt.opts,
				tlspin.WithLogger(hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})))...)
			echo := func(c net.Conn) {
				defer c.Close()
				io.Copy(c, c)
			}
			var conn net.Conn
			if tt.listen {
				ln, err := v.Listen("tcp", "127.0.0.1:0", srv.cert)
				if err != nil {
					t.Fatal(err)
				}
				addr := e2e.Serve(t, ln, echo)
				c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cli.cert}})
				if err != nil {
					t.Fatal(err)
				}
				conn = c
			} else {
				ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srv.cert}})
				if err != nil {
					t.Fatal(err)
				}
				addr := e2e.Serve(t, ln, echo)
				c, err := v.Dial(t.Context(), "tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				conn = c
			}
			defer conn.Close()
			roundTrip := func(msg string) error {
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(conn, msg); err != nil {
					return err
				}
				b := make([]byte, len(msg))
				_, err := io.ReadFull(conn, b)
				return err
			}
			if err := roundTrip("before"); err != nil {
				t.Fatal(err)
			}
			write(t, list, "# nobody\n")
			waitRejected(t, v, tlspin.Peer{Chain: peer.cert.Certificate, Client: tt.listen, ServerName: "localhost", Addr: "127.0.0.1:1"})
			if !tt.revoked {
				if err := roundTrip("after"); err != nil {
					t.Fatalf("closed WithoutRecheck: %v", err)
				}
				return
			}
			if !wait.Until(10*time.Second, func() bool { return roundTrip("x") != nil }) {
				t.Fatal("the connection outlived the removal of its peer's pin")
			}
			side := "server"
			if tt.listen {
				side = "client"
			}
			warning := "closed a connection: asked again after a policy change, the verifiers no longer allow the " + side
			if !wait.Until(10*time.Second, func() bool { return strings.Contains(logs.String(), warning) }) {
				t.Fatalf("no warning %q:\n%s", warning, logs)
			}
			if !strings.Contains(logs.String(), peer.spki) {
				t.Fatalf("the warning does not name the peer's key %s:\n%s", peer.spki, logs)
			}
		})
	}
}

// TestKeyRotationWithAnOpenConnection: a server rotates its key; the user
// removes its tofu line to accept the new one (as ssh-keygen -R), while a
// connection made with the old key is still open. Asking about that
// connection again must not hold the old key as being recorded, or the
// new key would be refused for a minute.
func TestKeyRotationWithAnOpenConnection(t *testing.T) {
	old, renewed := newIdentity("server"), newIdentity("server")
	var current atomic.Pointer[tls.Certificate]
	current.Store(&old.cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return current.Load(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	addr := e2e.Serve(t, ln, func(c net.Conn) {
		defer c.Close()
		io.Copy(c, c)
	})
	pins := filepath.Join(t.TempDir(), "known")
	v := start(t, []string{"tofu:file=" + pins})
	open, err := v.Dial(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	current.Store(&renewed.cert)
	write(t, pins, "# removed to accept the new key\n")
	// The edit seen: the old key is a first use again.
	waitRejected(t, v, tlspin.Peer{Chain: old.cert.Certificate, Addr: addr})
	// A round of questions about the open connection after the edit.
	for p := tlspin.WatchPasses(v); tlspin.WatchPasses(v) <= p; {
		time.Sleep(10 * time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := v.Dial(t.Context(), "tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new key refused after the open connection was asked about again: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, err := os.ReadFile(pins)
	if err != nil || !strings.Contains(string(b), strings.TrimPrefix(renewed.spki, "sha256//")) {
		t.Fatalf("the new key was not recorded: %s %v", b, err)
	}
}
