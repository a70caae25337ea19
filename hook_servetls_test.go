package tlspin_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/e2e"
)

// TestHookServerConfigServeTLSWithFiles: net/http's ServeTLS(ln, certFile,
// keyFile) clones the configuration it is given and loads the files'
// certificate into its copy. HookServerConfig's GetConfigForClient used
// to hand crypto/tls a clone of the hooked configuration, which has no
// certificate: every handshake failed. The copy serves now, and its
// clients are still verified: a pinned client is served, over HTTP/2 as
// ServeTLS offers it, another is refused, and tofu, which cannot learn the
// client's address there nor record it after the handshake, refuses a
// first use rather than allow it unrecorded.
func TestHookServerConfigServeTLSWithFiles(t *testing.T) {
	dir := t.TempDir()
	srv := e2e.NewIdentity(t, dir, "server")
	client := newIdentity("client")
	pins := filepath.Join(dir, "known_pins")
	for _, tt := range []struct {
		name  string
		specs []string
		late  bool // the program sets its VerifyConnection after the hook
		ok    bool
	}{
		{"pinned client", []string{"spkipin:pin=" + client.spki}, false, true},
		{"another pin", []string{"spkipin:pin=" + newIdentity("other").spki}, false, false},
		{"tofu first use", []string{"tofu:file=" + pins}, false, false},
		// The copy would carry the program's VerifyConnection instead of
		// the verifiers': refused rather than served unverified.
		{"another pin, VerifyConnection set after the hook", []string{"spkipin:pin=" + newIdentity("other").spki}, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := start(t, tt.specs)
			cfg := v.HookServerConfig(&tls.Config{})
			if tt.late {
				cfg.VerifyConnection = func(tls.ConnectionState) error { return nil }
			}
			var mu sync.Mutex
			var served []string
			hs := &http.Server{
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					if len(r.TLS.PeerCertificates) > 0 {
						served = append(served, r.TLS.PeerCertificates[0].Subject.CommonName)
					}
					mu.Unlock()
					io.WriteString(w, "hello")
				}),
				TLSConfig:         cfg,
				ReadHeaderTimeout: 10 * time.Second,
			}
			ln := listen(t)
			done := make(chan error, 1)
			go func() { done <- hs.ServeTLS(ln, srv.File, srv.File) }()
			t.Cleanup(func() {
				hs.Close()
				if err := <-done; !errors.Is(err, http.ErrServerClosed) {
					t.Errorf("ServeTLS: %v", err)
				}
			})
			hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{client.cert}},
				ForceAttemptHTTP2: true,
			}}
			defer hc.CloseIdleConnections()
			resp, err := hc.Get("https://" + ln.Addr().String() + "/")
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			if !tt.ok {
				if err == nil {
					t.Fatalf("ATTACK: served %q to a client the verifiers do not allow", body)
				}
				if len(served) != 0 {
					t.Errorf("the handler ran for %v", served)
				}
				if b, _ := os.ReadFile(pins); len(b) != 0 {
					t.Errorf("recorded:\n%s", b)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			if string(body) != "hello" || resp.ProtoMajor != 2 {
				t.Errorf("got %s %q, want HTTP/2 and hello", resp.Proto, body)
			}
			if strings.Join(served, ",") != "client" {
				t.Errorf("the handler saw clients %v, want the pinned one", served)
			}
		})
	}
}
