package sdkdeps_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
)

// allowed are the modules the Go SDK (core/sdk, core/sdk/sdktest) may link:
// go-plugin and its logger, gRPC and protobuf, and what they need. A new
// entry is a decision: every plugin author's module gets it.
var allowed = []string{
	"github.com/tlspin/tlspin",
	"github.com/fatih/color",
	"github.com/golang/protobuf",
	"github.com/hashicorp/go-hclog",
	"github.com/hashicorp/go-plugin",
	"github.com/hashicorp/yamux",
	"github.com/mattn/go-colorable",
	"github.com/mattn/go-isatty",
	"github.com/oklog/run",
	"golang.org/x/net",
	"golang.org/x/sys",
	"golang.org/x/text",
	"google.golang.org/genproto/googleapis/rpc",
	"google.golang.org/grpc",
	"google.golang.org/protobuf",
}

// forbidden are modules tlspin uses that an SDK user must never get: the
// CLI's, the policy watcher's, and the test-only ones.
var forbidden = []string{
	"github.com/spf13/cobra",
	"github.com/spf13/pflag",
	"github.com/inconshreveable/mousetrap",
	"github.com/fsnotify/fsnotify",
	"github.com/rogpeppe/go-internal",
	"golang.org/x/tools",
}

func goCmd(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func check(t *testing.T, what string, modules []string) {
	t.Helper()
	for _, m := range modules {
		if slices.Contains(forbidden, m) {
			t.Errorf("%s: %s must not depend on %s", what, "the SDK", m)
		} else if !slices.Contains(allowed, m) {
			t.Errorf("%s: new module %s in the SDK's closure: add it to allowed if every plugin should get it", what, m)
		}
	}
}

// TestSDKDependencyClosure lists the modules of every package the SDK and
// its test harness import, transitively (go list -deps).
func TestSDKDependencyClosure(t *testing.T) {
	out := goCmd(t, ".", nil, "list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}",
		"github.com/tlspin/tlspin/core/sdk", "github.com/tlspin/tlspin/core/sdk/sdktest")
	var mods []string
	for _, m := range strings.Fields(out) {
		if !slices.Contains(mods, m) {
			mods = append(mods, m)
		}
	}
	if !slices.Contains(mods, "github.com/hashicorp/go-plugin") || !slices.Contains(mods, "google.golang.org/grpc") {
		t.Fatalf("closure %v lacks go-plugin or grpc: is the listing broken?", mods)
	}
	check(t, "go list -deps", mods)
	// The SDK's own packages: no CLI, no host.
	pkgs := goCmd(t, ".", nil, "list", "-deps", "github.com/tlspin/tlspin/core/sdk")
	for _, p := range strings.Fields(pkgs) {
		if strings.HasPrefix(p, "github.com/tlspin/tlspin/cmd/") || p == "github.com/tlspin/tlspin/core/host" {
			t.Errorf("core/sdk imports %s", p)
		}
	}
}

// TestAuthorModule plays a plugin author: a module of its own that
// requires tlspin (replaced by this checkout, its modules held to this
// repository's go.sum), with a plugin and a test
// that uses sdktest, go mod tidy, go build, and go version -m on the binary. Neither go.mod nor the binary may name a
// forbidden module.
func TestAuthorModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin in a module of its own")
	}
	root := strings.TrimSpace(goCmd(t, ".", nil, "list", "-m", "-f", "{{.Dir}}"))
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/tlspin-verifier-cnpin\n\ngo 1.26.0\n\nrequire github.com/tlspin/tlspin v0.0.0\n\nreplace github.com/tlspin/tlspin => " + root + "\n",
		"main.go": `package main

import (
	"context"

	"github.com/tlspin/tlspin/core/sdk"
	"github.com/tlspin/tlspin/core/verify"
)

type cnpin struct{ cn string }

func (*cnpin) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{Name: "cnpin", Version: "1", Options: []verify.Option{{Name: "cn", Required: true}}}, nil
}

func (v *cnpin) Configure(ctx context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	o := sdk.ReadOptions(ctx, v, req)
	v.cn = o.String("cn", "")
	return &verify.ConfigureResponse{}, o.Err()
}

func (v *cnpin) Verify(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
	c, err := sdk.Leaf(req)
	if err != nil {
		return nil, err
	}
	if c.Subject.CommonName != v.cn {
		return sdk.Rejectf("leaf CN %q; to trust it: --verifier cnpin:cn=%s", c.Subject.CommonName, c.Subject.CommonName), nil
	}
	return &verify.Verdict{Allow: true, Reason: "CN " + v.cn + " is pinned", Matched: v.cn}, nil
}

func main() { sdk.Serve(&cnpin{}) }
`,
		"main_test.go": `package main

import (
	"testing"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/sdk/sdktest"
	"github.com/tlspin/tlspin/core/verify"
)

func TestCNPin(t *testing.T) {
	c := sdktest.Start(t, &cnpin{}, verify.Options{"cn": {"api"}})
	if v := c.Check(t, sdktest.SelfSigned(t, certs.Template{CommonName: "api", Days: 1})); !v.Allow {
		t.Fatal(v.Reason)
	}
}
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The checksums come from this repository's go.sum (the checksum
	// database is not reachable from tests); tidy keeps the lines it needs.
	// Modules come from the module cache, or from GOPROXY on a fresh
	// machine whose cache lacks a go.mod only the graph needs (tidy reads
	// go-colorable v0.1.9's, which no build fetches), and must match those
	// lines.
	sums, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sums, 0o644); err != nil {
		t.Fatal(err)
	}
	pinned := []string{"GOSUMDB=off", "GOFLAGS=-mod=mod", "GOWORK=off"}
	goCmd(t, dir, pinned, "mod", "tidy")
	goMod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("go.mod after go mod tidy:\n%s", goMod)
	var required []string
	for _, line := range strings.Split(string(goMod), "\n") {
		if f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require ")); len(f) >= 2 && strings.Contains(f[0], ".") && !strings.HasPrefix(line, "module") && !strings.HasPrefix(line, "replace") {
			required = append(required, f[0])
		}
	}
	check(t, "go.mod", required)

	bin := filepath.Join(dir, "tlspin-verifier-cnpin")
	goCmd(t, dir, pinned, "build", "-o", bin, ".")
	var linked []string
	for _, line := range strings.Split(goCmd(t, dir, nil, "version", "-m", bin), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "dep" {
			linked = append(linked, f[1])
		}
	}
	if len(linked) == 0 {
		t.Fatal("go version -m lists no modules")
	}
	check(t, "go version -m", linked)

	// Install as the doc says, pin it with a sha256sum line, and run it.
	lib := filepath.Join(t.TempDir(), "lib", "tlspin")
	plugin := filepath.Join(lib, "tlspin-verifier-cnpin")
	run(t, dir, "install", "-D", "-m", "0755", bin, plugin)
	line := run(t, lib, "sha256sum", "tlspin-verifier-cnpin")
	sumFile := filepath.Join(t.TempDir(), "plugins.sha256")
	if err := os.WriteFile(sumFile, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	pins, err := host.LoadChecksums(sumFile)
	if err != nil {
		t.Fatalf("the sha256sum line %q: %v", line, err)
	}
	found, err := (&host.Finder{PluginDirs: []string{lib}}).Find("cnpin")
	if err != nil {
		t.Fatal(err)
	}
	spec := found.Spec(verify.Options{"cn": {"api"}})
	spec.SHA256 = pins["cnpin"]
	cfg := host.Config{Env: []string{"TMPDIR=" + t.TempDir()}, StartTimeout: 20 * time.Second}
	p, err := host.Start(context.Background(), spec, cfg)
	if err != nil {
		t.Fatalf("the pinned plugin: %v", err)
	}
	_, leaf, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "api"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{leaf.Raw}})
	p.Close()
	if err != nil || !v.Allow {
		t.Fatalf("Verify = %+v, %v; want the CN pinned", v, err)
	}
	// A changed binary is refused until the line is replaced.
	f, err := os.OpenFile(plugin, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0})
	f.Close()
	if p, err := host.Start(context.Background(), spec, cfg); !errors.Is(err, host.ErrChecksum) {
		if p != nil {
			p.Close()
		}
		t.Fatalf("changed binary: %v; want host.ErrChecksum", err)
	}
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out)
}
