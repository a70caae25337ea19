package nodeverifier_test

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

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// needNode skips the test when node or the example's node_modules (npm ci)
// is missing, except in CI, where .ci/run installs both.
func needNode(t *testing.T) {
	t.Helper()
	var msg string
	if _, err := exec.LookPath("node"); err != nil {
		msg = "node not found (apt-get install nodejs npm)"
	} else if _, err := os.Stat("node_modules/@grpc/grpc-js"); err != nil {
		msg = "examples/node-verifier/node_modules missing: run `npm ci` there"
	} else {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func config(t *testing.T) host.Config {
	tmp := t.TempDir()
	return host.Config{
		Logger: hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Debug}),
		Env: host.PluginEnv(func(k string) string {
			switch k {
			case "TLSPIN_LOG_LEVEL":
				return "debug"
			case "TMPDIR":
				return tmp
			}
			return os.Getenv(k)
		}),
		StartTimeout: 20 * time.Second,
	}
}

func start(t *testing.T, opts verify.Options) (*host.Plugin, error) {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	f, err := (&host.Finder{PluginDirs: []string{dir}}).Find("cnpin")
	if err != nil {
		t.Fatal(err)
	}
	return host.Start(context.Background(), f.Spec(opts), config(t))
}

func selfSigned(t *testing.T, cn string) []byte {
	t.Helper()
	_, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: cn, SANs: []string{"api.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	return c.Raw
}

// issued returns a leaf with subject CN cn issued by a CA with CN caName.
func issued(t *testing.T, cn, caName string) []byte {
	t.Helper()
	caKey, ca, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: caName, IsCA: true})
	if err != nil {
		t.Fatal(err)
	}
	key, err := certs.GenerateKey(certs.ECDSA, 256)
	if err != nil {
		t.Fatal(err)
	}
	c, err := certs.Issue(certs.Template{CommonName: cn, SANs: []string{"api.example.com"}}, key.Public(), ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return c.Raw
}

func TestCNPinThroughHost(t *testing.T) {
	needNode(t)
	p, err := start(t, verify.Options{"cn": {"api.example.com", "www.example.com"}, "issuer-cn": {"Example CA", "Self"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d, err := p.Describe(context.Background())
	if err != nil || d.Name != "cnpin" || len(d.Options) != 2 || !d.Options[0].Required || !d.Options[0].Repeated {
		t.Fatalf("Describe = %+v, %v", d, err)
	}
	tests := []struct {
		name   string
		chain  [][]byte
		allow  bool
		reason string
	}{
		{"pinned CN, pinned issuer", [][]byte{issued(t, "api.example.com", "Example CA")}, true, `leaf subject CN "api.example.com" is pinned`},
		{"second pinned CN, self-signed as Self", [][]byte{selfSigned(t, "Self")}, false, `leaf subject has "Self", not a pinned one; to trust it: --verifier cnpin:cn=Self`},
		{"pinned CN, other issuer", [][]byte{issued(t, "www.example.com", "Evil CA")}, false, `leaf "www.example.com" was issued by "Evil CA", not a pinned issuer`},
		{"other CN", [][]byte{issued(t, "api.example.org", "Example CA")}, false, `to trust it: --verifier cnpin:cn=api.example.org`},
		{"no CN", [][]byte{selfSigned(t, "")}, false, "leaf subject has no common name"},
		{"no certificate", nil, false, "peer sent no certificate"},
		{"garbage", [][]byte{[]byte("not DER")}, false, "peer certificate (7 bytes) does not parse"},
	}
	pid := p.Pid()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := p.Verify(context.Background(), &verify.Request{PeerChain: tc.chain, ServerName: "api.example.com", Side: verify.ClientVerifiesServer})
			if err != nil {
				t.Fatal(err)
			}
			if v.Allow != tc.allow || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("verdict allow=%v reason %q; want allow=%v, reason containing %q", v.Allow, v.Reason, tc.allow, tc.reason)
			}
			if tc.allow && (v.Matched != "cn=api.example.com" || v.CacheFor != time.Minute) {
				t.Errorf("matched %q, cache for %s; want cn=api.example.com and 1m", v.Matched, v.CacheFor)
			}
		})
	}
	if p.Pid() != pid || p.Restarts() != 0 {
		t.Errorf("pid %d→%d, %d restarts: an empty chain or garbage must not crash the plugin", pid, p.Pid(), p.Restarts())
	}
}

// TestCNPinEscapedNames: Node prints a name escaped as in RFC 2253
// ("CN=Acme\, Inc"); cnpin must compare the name itself, and its hint must
// be a --verifier argument that pins it (a comma escaped for the spec, the
// whole quoted for the shell).
func TestCNPinEscapedNames(t *testing.T) {
	needNode(t)
	p, err := start(t, verify.Options{"cn": {"Acme, Inc", `back\slash "quoted"`, "tab\tin"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tests := []struct {
		cn     string
		allow  bool
		reason string
	}{
		{"Acme, Inc", true, `leaf subject CN "Acme, Inc" is pinned`},
		{`back\slash "quoted"`, true, `leaf subject CN "back\\slash \"quoted\"" is pinned`},
		{"tab\tin", true, `leaf subject CN "tab\tin" is pinned`},
		{"Acme, Inc.", false, `to trust it: --verifier 'cnpin:cn=Acme\, Inc.'`},
		{`x<y>;z+w\`, false, `to trust it: --verifier 'cnpin:cn=x<y>;z+w\\'`},
		{"it's", false, `to trust it: --verifier 'cnpin:cn=it'\''s'`},
	}
	for _, tc := range tests {
		t.Run(tc.cn, func(t *testing.T) {
			v, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{selfSigned(t, tc.cn)}, ServerName: "api.example.com", Side: verify.ClientVerifiesServer})
			if err != nil {
				t.Fatal(err)
			}
			if v.Allow != tc.allow || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("verdict allow=%v reason %q; want allow=%v, reason containing %q", v.Allow, v.Reason, tc.allow, tc.reason)
			}
		})
	}
}

func TestCNPinBadOptions(t *testing.T) {
	needNode(t)
	tests := []struct {
		name   string
		opts   verify.Options
		quoted string
	}{
		{"no cn", verify.Options{}, `option "cn": cnpin requires it`},
		{"unknown option", verify.Options{"cn": {"a"}, "colour": {"red"}}, `option "colour": cnpin does not take this option (it takes: cn, issuer-cn)`},
		{"bad value", verify.Options{"cn": {"a", " b"}}, `option cn=" b": want a common name`},
		{"bad issuer", verify.Options{"cn": {"a"}, "issuer-cn": {"x=y"}}, `option issuer-cn="x=y"`},
		// Quoted whole, its 70 KB went over the host's header limit: the
		// host saw a reset call, not a bad option.
		{"a long bad value", verify.Options{"cn": {strings.Repeat("x=", 35<<10)}}, "[truncated: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := start(t, tc.opts)
			if err == nil {
				p.Close()
				t.Fatal("started with a bad option")
			}
			if !errors.Is(err, verify.ErrBadOption) || !strings.Contains(err.Error(), tc.quoted) {
				t.Fatalf("err = %v; want a bad-option error containing %s", err, tc.quoted)
			}
		})
	}
}

// TestCNPinSend runs `tlspin send --verifier cnpin:...` against a real TLS
// server: the message arrives when the CN is pinned; otherwise tlspin
// exits 3, says how to trust the server, and sends nothing.
func TestCNPinSend(t *testing.T) {
	needNode(t)
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "api.example.com", SANs: []string{"api.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{c.Raw}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan string, 4)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(conn net.Conn) {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(20 * time.Second))
				b, _ := io.ReadAll(conn)
				received <- string(b)
			}(conn)
		}
	}()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	tlspin := testbin.Tlspin(t)
	send := func(cn, msg string) (int, string) {
		cmd := exec.Command(tlspin, "--plugin-dir", dir, "send", "--server-name", "api.example.com",
			"--verifier", "cnpin:cn="+cn, ln.Addr().String(), msg)
		cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), stderr.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, stderr.String()
	}
	if code, stderr := send("api.example.com", "hello from node"); code != 0 {
		t.Fatalf("pinned CN: exit %d\n%s", code, stderr)
	}
	select {
	case got := <-received:
		if got != "hello from node" {
			t.Errorf("server received %q", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server received nothing")
	}
	code, stderr := send("other.example.com", "must not arrive")
	if code != 3 || !strings.Contains(stderr, "to trust it: --verifier cnpin:cn=api.example.com") {
		t.Fatalf("other CN: exit %d, stderr:\n%s\nwant exit 3 and how to trust it", code, stderr)
	}
	select {
	case got := <-received:
		if got != "" {
			t.Errorf("server received %q from a rejected connection", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the rejected connection was never closed")
	}
}

// TestProtoCopyIsCurrent: the example loads verifier.proto from its own
// directory (so that it can be installed alone); it must be the contract.
func TestProtoCopyIsCurrent(t *testing.T) {
	want, err := os.ReadFile("../../proto/verifier/v1/verifier.proto")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("verifier.proto")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("verifier.proto differs from proto/verifier/v1/verifier.proto: cp ../../proto/verifier/v1/verifier.proto .")
	}
}
