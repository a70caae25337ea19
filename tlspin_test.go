package tlspin_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/testbin"
)

// tlsServer accepts TLS connections with id's certificate on loopback
// and reads what each client sends, until the test ends.
func tlsServer(t *testing.T, id identity) string {
	return e2e.ServeTLS(t, id.cert, func(c *tls.Conn) { io.Copy(io.Discard, c) })
}

func start(t *testing.T, specs []string, opts ...tlspin.Option) *tlspin.Verifiers {
	t.Helper()
	v, err := tlspin.StartWith(context.Background(), specs, append([]tlspin.Option{tlspin.WithPluginEnv("GORACE")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func misbehaveDir(t *testing.T) string {
	return filepath.Dir(testbin.Build(t, "./cmd/tlspin/cli/testdata/plugins/misbehave", "tlspin-verifier-misbehave"))
}

// TestRejections: which error a rejected handshake returns, by how the
// verifiers decided.
func TestRejections(t *testing.T) {
	srv := newIdentity("server")
	addr := tlsServer(t, srv)
	wrong := "md5pin:pin=00112233445566778899aabbccddeeff"
	tests := []struct {
		name    string
		specs   []string
		require tlspin.Require
		failed  bool
	}{
		{"wrong pin", []string{wrong}, tlspin.RequireAll, false},
		{"the verifier's own error is a failure", []string{"misbehave:mode=error"}, tlspin.RequireAll, true},
		{"all: a verdict settles it despite an error", []string{"misbehave:mode=error", wrong}, tlspin.RequireAll, false},
		{"crash", []string{"misbehave:mode=crash"}, tlspin.RequireAll, true},
		{"all: a verdict settles it despite a crash", []string{"misbehave:mode=crash", wrong}, tlspin.RequireAll, false},
		{"any: the crashed one might have allowed", []string{"misbehave:mode=crash", wrong}, tlspin.RequireAny, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := start(t, tt.specs, tlspin.WithPluginDirs(misbehaveDir(t)), tlspin.WithRequire(tt.require))
			_, err := tls.Dial("tcp", addr, v.ClientConfig("localhost"))
			var rej *tlspin.RejectionError
			if !errors.As(err, &rej) {
				t.Fatalf("err = %v, want a *RejectionError", err)
			}
			if errors.Is(err, tlspin.ErrRejected) == tt.failed || errors.Is(err, tlspin.ErrVerifierFailed) != tt.failed || rej.Failed() != tt.failed {
				t.Errorf("ErrRejected %v, ErrVerifierFailed %v, want failed=%v: %v", errors.Is(err, tlspin.ErrRejected), errors.Is(err, tlspin.ErrVerifierFailed), tt.failed, err)
			}
			if rej.Peer != "server" || rej.Require != tt.require || len(rej.Verdicts) != len(tt.specs) || rej.Verdicts[0].Allowed {
				t.Errorf("rejection %+v", rej)
			}
			if rej.PeerSHA256 != srv.sha || rej.PeerSPKI != srv.spki {
				t.Errorf("fingerprints %s %s, want %s %s", rej.PeerSHA256, rej.PeerSPKI, srv.sha, srv.spki)
			}
		})
	}
}

// TestClose: Close is idempotent, and every configuration fails closed
// afterwards.
func TestClose(t *testing.T) {
	srv := newIdentity("server")
	addr := tlsServer(t, srv)
	v := start(t, []string{"sha256pin:pin=" + srv.sha})
	cfg := v.ClientConfig("localhost")
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	for i := range 2 {
		if err := v.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	_, err = tls.Dial("tcp", addr, cfg)
	if !errors.Is(err, tlspin.ErrClosed) || !errors.Is(err, tlspin.ErrVerifierFailed) || errors.Is(err, tlspin.ErrRejected) {
		t.Errorf("handshake after Close: %v", err)
	}
	if _, err := v.Dial(context.Background(), "tcp", addr); !errors.Is(err, tlspin.ErrClosed) {
		t.Errorf("Dial after Close: %v", err)
	}
	if _, err := v.Listen("tcp", "127.0.0.1:0", srv.cert); !errors.Is(err, tlspin.ErrClosed) {
		t.Errorf("Listen after Close: %v", err)
	}
}

// TestBadConfig: mistakes in what Start is given match ErrBadConfig and
// start nothing.
func TestBadConfig(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	tests := []struct {
		name  string
		specs []string
		opts  []tlspin.Option
		says  string
	}{
		{"no verifier", nil, nil, "no verifier"},
		{"empty name", []string{":pin=x"}, nil, "missing name"},
		{"option without value", []string{"md5pin:pin"}, nil, "not key=value"},
		{"unknown verifier", []string{"nosuch"}, nil, `unknown verifier "nosuch"`},
		{"bad option value", []string{"md5pin:pin=zz"}, nil, `pin="zz"`},
		{"unknown option", []string{"md5pin:pin=00112233445566778899aabbccddeeff,color=blue"}, nil, `"color"`},
		{"checksum for a name not started", []string{"md5pin:pin=00112233445566778899aabbccddeeff"}, []tlspin.Option{tlspin.WithPluginSHA256("md5pn", sum)}, `"md5pn"`},
		{"malformed checksum", []string{"md5pin"}, []tlspin.Option{tlspin.WithPluginSHA256("md5pin", "abc")}, `"abc"`},
		{"checksums file that cannot be read", []string{"md5pin:pin=00112233445566778899aabbccddeeff"}, []tlspin.Option{tlspin.WithPluginChecksums(filepath.Join(t.TempDir(), "nosuch.sha256"))}, "nosuch.sha256: no such file"},
		{"unknown require", []string{"md5pin"}, []tlspin.Option{tlspin.WithRequire("most")}, `"most"`},
		{"reserved plugin variable", []string{"md5pin:pin=00112233445566778899aabbccddeeff"}, []tlspin.Option{tlspin.WithPluginEnv("PLUGIN_MIN_PORT")}, "go-plugin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := tlspin.StartWith(context.Background(), tt.specs, tt.opts...)
			if err == nil {
				v.Close()
				t.Fatal("started")
			}
			if !errors.Is(err, tlspin.ErrBadConfig) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("err = %v; want ErrBadConfig saying %q", err, tt.says)
			}
		})
	}
}

// TestHookClientConfig: the caller's VerifyConnection runs after the
// verifiers allowed the server, never for a rejected one.
func TestHookClientConfig(t *testing.T) {
	srv := newIdentity("server")
	addr := tlsServer(t, srv)
	for _, tt := range []struct {
		spec  string
		calls int
	}{{"spkipin:pin=" + srv.spki, 1}, {"spkipin:pin=" + newIdentity("other").spki, 0}} {
		v := start(t, []string{tt.spec})
		calls := 0
		base := &tls.Config{ServerName: "localhost", VerifyConnection: func(tls.ConnectionState) error { calls++; return nil }}
		c, err := tls.Dial("tcp", addr, v.HookClientConfig(base, ""))
		if err == nil {
			c.Close()
		}
		if calls != tt.calls || (err == nil) != (tt.calls == 1) {
			t.Errorf("%s: caller's VerifyConnection ran %d times, err %v", tt.spec, calls, err)
		}
	}
}

// TestHookServerConfig: a GetConfigForClient of the caller still chooses
// the configuration (here the certificate), with the verifiers hooked in.
func TestHookServerConfig(t *testing.T) {
	first, second, client := newIdentity("first"), newIdentity("second"), newIdentity("client")
	v := start(t, []string{"spkipin:pin=" + client.spki})
	base := &tls.Config{
		Certificates: []tls.Certificate{first.cert},
		GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			return &tls.Config{Certificates: []tls.Certificate{second.cert}}, nil
		},
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", v.HookServerConfig(base))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	cv := start(t, []string{"spkipin:pin=" + second.spki})
	for _, id := range []identity{client, newIdentity("stranger")} {
		cfg := cv.ClientConfig("localhost")
		cfg.Certificates = []tls.Certificate{id.cert}
		cfg.MaxVersion = tls.VersionTLS12 // the server's verdict arrives within the handshake
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if ok := err == nil; ok != (id.spki == client.spki) {
			t.Errorf("client %s: %v", id.cert.Leaf.Subject.CommonName, err)
		}
		if err == nil {
			c.Close()
		}
	}
}

// TestHookServerConfigReplaced: a program that replaces the hooked
// configuration's GetConfigForClient, which carries the verifiers, still
// has its clients checked: base itself verifies, rather than accepting
// any certificate.
func TestHookServerConfigReplaced(t *testing.T) {
	srv, good := newIdentity("server"), newIdentity("good")
	v := start(t, []string{"spkipin:pin=" + good.spki})
	cfg := v.HookServerConfig(&tls.Config{Certificates: []tls.Certificate{srv.cert}})
	cfg.GetConfigForClient = nil
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := e2e.Serve(t, ln, func(c net.Conn) { c.(*tls.Conn).Handshake(); io.Copy(io.Discard, c) })
	for _, tt := range []struct {
		id    identity
		allow bool
	}{{newIdentity("bad"), false}, {good, true}} {
		err := handshakeAs(addr, "127.0.0.1", tt.id.cert)
		if (err == nil) != tt.allow {
			t.Errorf("%s: handshake error %v, want allowed %v", tt.id.cert.Leaf.Subject.CommonName, err, tt.allow)
		}
	}
}

// TestListen: Accept returns only clients the verifiers allowed; a rejected
// or silent client delays no other.
func TestListen(t *testing.T) {
	srv, good := newIdentity("server"), newIdentity("good")
	v := start(t, []string{"spkipin:pin=" + good.spki})
	ln, err := v.Listen("tcp", "127.0.0.1:0", srv.cert)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan string)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			b, _ := io.ReadAll(c)
			c.Close()
			accepted <- string(b)
		}
	}()
	silent, err := net.Dial("tcp", ln.Addr().String()) // never says hello
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	cv := start(t, []string{"spkipin:pin=" + srv.spki})
	for _, id := range []identity{newIdentity("bad"), good} {
		cfg := cv.ClientConfig("localhost")
		cfg.Certificates = []tls.Certificate{id.cert}
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, id.cert.Leaf.Subject.CommonName)
		c.Close()
	}
	select {
	case got := <-accepted:
		if got != "good" {
			t.Errorf("accepted %q, want only the good client", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the allowed client was not accepted")
	}
	ln.Close()
	if _, ok := <-accepted; ok {
		t.Error("Accept returned another connection")
	}
}

// TestTofuKeyAsCLI: Dial records a server under the same key as `tlspin
// send` does for the same address.
func TestTofuKeyAsCLI(t *testing.T) {
	addr := tlsServer(t, newIdentity("server"))
	_, port, _ := net.SplitHostPort(addr)
	target := "localhost:" + port
	dir := t.TempDir()
	lib, cli := filepath.Join(dir, "lib_pins"), filepath.Join(dir, "cli_pins")

	v := start(t, []string{"tofu:file=" + lib})
	c, err := v.Dial(context.Background(), "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if out, err := exec.Command(testbin.Tlspin(t), "send", "--verifier", "tofu:file="+cli, target, "hi").CombinedOutput(); err != nil {
		t.Fatalf("tlspin send: %v\n%s", err, out)
	}
	key := func(file string) string {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.Lines(string(b)) {
			if !strings.HasPrefix(l, "#") {
				return strings.Fields(l)[0]
			}
		}
		t.Fatalf("%s records nothing:\n%s", file, b)
		return ""
	}
	if k, want := key(lib), key(cli); k != want || k != target {
		t.Errorf("library recorded %q, tlspin send %q, want both %q", k, want, target)
	}
}

// TestBuiltinRunner: a program that does not call ServeBuiltin runs
// built-in verifiers with the tlspin binary on $PATH (or tlspin-builtins
// next to it), and without one says what to do.
func TestBuiltinRunner(t *testing.T) {
	prog := testbin.Build(t, "./testdata/nohook", "nohook")
	tl, alone := testbin.Tlspin(t), testbin.TlspinAlone(t)
	for _, tt := range []struct {
		path, says string
		ok         bool
	}{
		{filepath.Dir(alone), `runner="the tlspin binary on $PATH" path=` + alone, true},
		{filepath.Dir(tl), `runner="tlspin-builtins next to ` + tl + `, direct protocol"`, true},
		{"/nonexistent", "does not call tlspin.ServeBuiltin() first thing in main, and no tlspin binary is on $PATH", false},
	} {
		cmd := exec.Command(prog, "md5pin:pin=00112233445566778899aabbccddeeff")
		cmd.Env = []string{"PATH=" + tt.path, "TLSPIN_LOG_LEVEL=debug", "HOME=" + t.TempDir()}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if (err == nil) != tt.ok || !strings.Contains(stderr.String(), tt.says) {
			t.Errorf("PATH=%s: %v, stdout %q; want it to say %q; stderr:\n%s", tt.path, err, stdout.String(), tt.says, stderr.String())
		}
	}
}
