package tlspin_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestResumedSessionIsVerifiedAgain is the attack of a server that
// resumes a session made where another pin applied: a program whose
// HookClientConfig keeps its own ClientSessionCache, shared by Verifiers
// that pin different servers, or whose allowlist dropped the server since.
// crypto/tls skips the certificate check on resumption; the verifiers must
// not, or the session would outlive the pin it was made under.
func TestResumedSessionIsVerifiedAgain(t *testing.T) {
	srv, other := newIdentity("server"), newIdentity("other")
	allowlist := func(id identity) string { return "spki:" + id.spki[len("sha256//"):] + "\n" }
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, tt := range []struct {
			name string
			// list: the session is made under an allowlist listing srv
			// in the file list, not a pin on srv.
			list bool
			// resume returns the Verifiers to resume the session with,
			// given made, those it was made with.
			resume func(t *testing.T, made *tlspin.Verifiers, list string) *tlspin.Verifiers
			allow  bool
		}{
			{"the same pin", false, func(t *testing.T, _ *tlspin.Verifiers, _ string) *tlspin.Verifiers {
				return start(t, []string{"spkipin:pin=" + srv.spki})
			}, true},
			{"another pin", false, func(t *testing.T, _ *tlspin.Verifiers, _ string) *tlspin.Verifiers {
				return start(t, []string{"spkipin:pin=" + other.spki})
			}, false},
			{"the allowlist edited", true, func(t *testing.T, made *tlspin.Verifiers, list string) *tlspin.Verifiers {
				if err := os.WriteFile(list, []byte(allowlist(other)), 0o600); err != nil {
					t.Fatal(err)
				}
				peer := tlspin.Peer{Chain: srv.cert.Certificate, ServerName: "localhost"}
				if !wait.Until(10*time.Second, func() bool {
					_, err := made.Check(context.Background(), peer)
					return errors.Is(err, tlspin.ErrRejected)
				}) {
					t.Fatal("the allowlist was not reloaded")
				}
				return made
			}, false},
		} {
			t.Run(fmt.Sprintf("%s %s", tls.VersionName(version), tt.name), func(t *testing.T) {
				resumed := make(chan bool, 2)
				ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srv.cert}, MaxVersion: version})
				if err != nil {
					t.Fatal(err)
				}
				addr := e2e.Serve(t, ln, func(c net.Conn) {
					tc := c.(*tls.Conn)
					err := tc.Handshake()
					resumed <- tc.ConnectionState().DidResume
					if err == nil {
						// The ticket (TLS 1.3) goes before this byte.
						tc.Write([]byte("x"))
						io.Copy(io.Discard, tc)
					}
				})
				made := start(t, []string{"spkipin:pin=" + srv.spki})
				list := filepath.Join(t.TempDir(), "pins")
				if tt.list {
					if err := os.WriteFile(list, []byte(allowlist(srv)), 0o600); err != nil {
						t.Fatal(err)
					}
					made = start(t, []string{"allowlist:file=" + list})
				}
				cache := tls.NewLRUClientSessionCache(4)
				dial := func(v *tlspin.Verifiers) (bool, error) {
					c, err := tls.Dial("tcp", addr, v.HookClientConfig(&tls.Config{ClientSessionCache: cache}, "localhost"))
					if err != nil {
						return <-resumed, err
					}
					defer c.Close()
					if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
						t.Fatal(err)
					}
					return <-resumed, nil
				}
				if r, err := dial(made); err != nil || r {
					t.Fatalf("the first handshake: resumed %v, %v", r, err)
				}
				r, err := dial(tt.resume(t, made, list))
				if !r {
					t.Fatalf("the server did not resume the session (%v): the test tests nothing", err)
				}
				switch {
				case tt.allow && err != nil:
					t.Fatalf("the resumption was refused: %v", err)
				case !tt.allow && err == nil:
					t.Fatal("ATTACK: a session made under another pin was resumed without it")
				case !tt.allow && !errors.Is(err, tlspin.ErrRejected):
					t.Fatalf("refused, but not by the verifiers: %v", err)
				}
			})
		}
	}
}
