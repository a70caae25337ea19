package pythonverifier_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/internal/testpy"
)

// clientCert makes a certificate like go-plugin's AutoMTLS client one.
func clientCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "localhost", SANs: []string{"localhost"}, IsCA: true})
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
}

// TestPythonAutoMTLS plays go-plugin's host by hand: it checks the
// handshake line, that the plugin presents the certificate it announced,
// requires the host's certificate (and no other), answers the health check
// and exits on the controller's Shutdown.
func TestPythonAutoMTLS(t *testing.T) {
	needPython(t)
	host := clientCert(t)
	cmd := exec.Command(testpy.Plugin(t, "tlspin-verifier-pyspki", t.TempDir()))
	cmd.Env = []string{
		rpc.Handshake.MagicCookieKey + "=" + rpc.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=1",
		"PLUGIN_CLIENT_CERT=" + string(certs.EncodeCert(host.Leaf)),
		"TMPDIR=" + t.TempDir(),
	}
	cmd.Stderr = testWriter{t}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(20 * time.Second):
		t.Fatal("no handshake line within 20s")
	}
	parts := strings.Split(line, "|")
	if len(parts) != 6 || parts[0] != "1" || parts[1] != "1" || parts[2] != "unix" || parts[4] != "grpc" {
		t.Fatalf("handshake %q; want 1|1|unix|SOCKET|grpc|CERT", line)
	}
	der, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		t.Fatalf("server certificate %q is not unpadded base64: %v", parts[5], err)
	}
	announced, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	sock := parts[3]

	dial := func(withCert *tls.Certificate) (*grpc.ClientConn, *[]*x509.Certificate) {
		roots := x509.NewCertPool()
		roots.AddCert(announced)
		seen := new([]*x509.Certificate)
		cfg := &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12,
			VerifyConnection: func(cs tls.ConnectionState) error { *seen = cs.PeerCertificates; return nil }}
		if withCert != nil {
			cfg.Certificates = []tls.Certificate{*withCert}
		}
		conn, err := grpc.NewClient("passthrough:unused",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			}),
			grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn, seen
	}
	check := func(conn *grpc.ClientConn) (*grpc_health_v1.HealthCheckResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: "plugin"})
	}

	for _, tc := range []struct {
		name string
		cert *tls.Certificate
	}{{"no client certificate", nil}, {"another client certificate", func() *tls.Certificate { c := clientCert(t); return &c }()}} {
		conn, _ := dial(tc.cert)
		if _, err := check(conn); err == nil {
			t.Errorf("%s: health check answered; want the TLS handshake refused", tc.name)
		}
	}

	conn, seen := dial(&host)
	r, err := check(conn)
	if err != nil {
		t.Fatalf("health check with the host's certificate: %v", err)
	}
	if r.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		t.Errorf("health status %v, want SERVING", r.GetStatus())
	}
	if len(*seen) == 0 || !(*seen)[0].Equal(announced) {
		t.Error("the plugin presented a certificate other than the one in its handshake line")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := conn.Invoke(ctx, "/plugin.GRPCController/Shutdown", &emptypb.Empty{}, &emptypb.Empty{}); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("plugin exited with %v after Shutdown; want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("plugin still running 10s after Shutdown")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket %s left behind: %v", sock, err)
	}
}
