package direct_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoGRPC: the protocol and the peer checks link no gRPC, protobuf or
// go-plugin, so that the built-ins binary that uses them starts fast.
func TestNoGRPC(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/tlspin/tlspin/core/direct", "github.com/tlspin/tlspin/core/peercred").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 10 || !strings.Contains(string(out), "github.com/hashicorp/go-hclog") {
		t.Fatalf("go list -deps gave %d packages without go-hclog: is the listing broken?", len(pkgs))
	}
	for _, p := range pkgs {
		if strings.Contains(p, "grpc") || strings.Contains(p, "protobuf") || strings.Contains(p, "go-plugin") {
			t.Errorf("core/direct or core/peercred depends on %s", p)
		}
	}
}
