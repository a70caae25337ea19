package pythonsdk_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/testpy"
)

func TestMain(m *testing.M) {
	e2e.HelperHost()
	code := m.Run()
	testpy.Cleanup()
	os.Exit(code)
}

// run runs the installed SDK's Python on a script, from a directory
// outside the source tree so that the installed package is the one
// imported, and returns its stdout.
func run(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testpy.Python(t), args...)
	cmd.Dir = t.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	t.Logf("%s", stderr.Bytes())
	return out
}

// TestInstalledWithPip: the package imported is the one pip installed,
// and it holds every module of the source tree, byte for byte.
func TestInstalledWithPip(t *testing.T) {
	out := run(t, "-c", "import os, tlspin_sdk; print(os.path.dirname(tlspin_sdk.__file__))")
	installed := strings.TrimSpace(string(out))
	if !strings.HasPrefix(installed, filepath.Dir(filepath.Dir(testpy.Python(t)))) {
		t.Fatalf("tlspin_sdk imported from %s, not from the virtual environment", installed)
	}
	src, err := filepath.Glob(filepath.Join(testpy.SDKDir(t), "tlspin_sdk", "*.py"))
	if err != nil || len(src) < 5 {
		t.Fatalf("sources: %v, %v", src, err)
	}
	for _, f := range src {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join(installed, filepath.Base(f)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("installed %s differs from the source (%v)", filepath.Base(f), err)
		}
	}
}

func TestPythonUnitTests(t *testing.T) {
	tests := filepath.Join(testpy.SDKDir(t), "tests")
	cmd := exec.Command(testpy.Python(t), "-m", "unittest", "discover", "-v", "-s", tests, "-t", tests)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("python unit tests: %v", err)
	}
	if strings.Contains(string(out), "Ran 0 tests") {
		t.Fatal("python found no unit tests")
	}
}

// TestCertificatesInGo checks the SDK's pure-Python certificates with Go's
// crypto/x509: the AutoMTLS one (self-signed, DNS SAN localhost, as the
// host requires) and an issued chain from the test helper.
func TestCertificatesInGo(t *testing.T) {
	out := run(t, "-c", `
import json
from tlspin_sdk import x509
auto = x509.certificate("localhost", ["localhost"], ca=True)
ca = x509.certificate("Test CA", ca=True)
leaf = x509.certificate("api.example.com", ["api.example.com", "www.example.com"], issuer=ca)
print(json.dumps({"auto": auto.pem.decode(), "ca": ca.pem.decode(), "leaf": leaf.pem.decode(),
                  "leaf_key": leaf.key.public.hex()}))
`)
	var got struct {
		Auto, CA, Leaf string
		LeafKey        string `json:"leaf_key"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	parse := func(s string) *x509.Certificate {
		b, _ := pem.Decode([]byte(s))
		if b == nil || b.Type != "CERTIFICATE" {
			t.Fatalf("not a PEM certificate: %q", s)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	auto, ca, leaf := parse(got.Auto), parse(got.CA), parse(got.Leaf)

	pool := func(c *x509.Certificate) *x509.CertPool { p := x509.NewCertPool(); p.AddCert(c); return p }
	// As go-plugin's host does: the announced certificate is the only root
	// and the server name is "localhost".
	if _, err := auto.Verify(x509.VerifyOptions{Roots: pool(auto), DNSName: "localhost", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("AutoMTLS certificate: %v", err)
	}
	if err := auto.CheckSignatureFrom(auto); err != nil {
		t.Errorf("AutoMTLS certificate self-signature: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(ca), DNSName: "www.example.com"}); err != nil {
		t.Errorf("issued leaf: %v", err)
	}
	if leaf.Subject.CommonName != "api.example.com" || leaf.Issuer.CommonName != "Test CA" || leaf.IsCA || !ca.IsCA {
		t.Errorf("leaf subject %q issuer %q isCA %v, CA isCA %v", leaf.Subject.CommonName, leaf.Issuer.CommonName, leaf.IsCA, ca.IsCA)
	}
	if k, ok := leaf.PublicKey.(ed25519.PublicKey); !ok || got.LeafKey != hex.EncodeToString(k) {
		t.Errorf("leaf key %T %x; want the Ed25519 key %s", leaf.PublicKey, leaf.PublicKey, got.LeafKey)
	}
}

// TestRunByHand: without the magic cookie, serve() explains and exits 1.
func TestRunByHand(t *testing.T) {
	cmd := exec.Command(testpy.Python(t), "-c", `
import tlspin_sdk as sdk
class V:
    def describe(self): return sdk.pb.DescribeResponse(name="byhand")
sdk.serve(V())
`)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v; want status 1", err)
	}
	if stdout.Len() != 0 || !strings.Contains(stderr.String(), "tlspin runs it: tlspin send --verifier byhand") {
		t.Errorf("stdout %q, stderr %q; want nothing on stdout and an explanation on stderr", stdout.String(), stderr.String())
	}
}

// TestGeneratedStubsAreCurrent regenerates verifier_pb2.py and fails if
// the committed one differs (see README.md, "Regenerating").
func TestGeneratedStubsAreCurrent(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("protoc not found: CI must install protobuf-compiler")
		}
		t.Skip("protoc not installed")
	}
	out := t.TempDir()
	cmd := exec.Command("protoc", "-I", "../../proto/verifier/v1", "--python_out="+out, "verifier.proto")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, b)
	}
	want, err := os.ReadFile(filepath.Join(out, "verifier_pb2.py"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("tlspin_sdk/verifier_pb2.py")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("tlspin_sdk/verifier_pb2.py is stale: regenerate it (README.md, Regenerating) and commit it")
	}
}
