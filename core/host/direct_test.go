package host_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/tlspin/tlspin/core/direct"
	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/wait"
)

// A plugin that claims to speak the direct protocol is held to it: every
// way of getting the handshake wrong is a start error that says which,
// and leaves no process behind. So it is when the host knows the
// verifier, and sends Configure while the process starts: the handshake's
// fault is the error, not the Configure it broke.
func TestDirectHandshakeFaults(t *testing.T) {
	v := strconv.Itoa(direct.Version)
	tests := []struct {
		name, script string
		is           error
		want         string // wantKnown, if set, for a spec with Known
		wantKnown    string
	}{
		{"garbage line", `echo "hello world"; sleep 5`, host.ErrHandshake, `"hello world" is not "1|` + v + `|fd|N|tlspin-direct"`, ""},
		{"a go-plugin line", `echo "1|1|unix|/tmp/s|grpc|"; sleep 5`, host.ErrHandshake, `|grpc|" is not`, ""},
		{"another version", `echo "1|3|fd|$TLSPIN_PLUGIN_CHANNEL_FD|tlspin-direct"; sleep 5`, host.ErrHandshake, `protocol version "3", this tlspin speaks ` + v, ""},
		{"the socket of version 2", `echo "1|2|unix|/tmp/s/verifier.sock|tlspin-direct"; sleep 5`, host.ErrHandshake, `is not "1|` + v + `|fd|N|tlspin-direct"`, ""},
		{"exits saying why", `echo "cannot start: out of pins" >&2; exit 3`, host.ErrHandshake, `exited before the handshake; its last words on stderr: "cannot start: out of pins`, ""},
		{"exits saying why without a newline", `printf "cannot start: no pins" >&2; exit 3`, host.ErrHandshake, `its last words on stderr: "cannot start: no pins"`, ""},
		{"another descriptor", `echo "1|` + v + `|fd|7|tlspin-direct"; sleep 5`, host.ErrHandshake, `it serves descriptor 7, not the channel the host gave (3)`, ""},
		{"silent", `sleep 5`, host.ErrHandshake, "wrote no handshake line within 700ms", ""},
		{"takes no connection", `echo "1|` + v + `|fd|$TLSPIN_PLUGIN_CHANNEL_FD|tlspin-direct"; sleep 5`, nil, "describe", "did not answer Configure within the start timeout"},
		{"closes the channel", `exec 3>&-; echo "1|` + v + `|fd|3|tlspin-direct"; sleep 5`, nil, "describe", "configure"},
	}
	for _, tc := range tests {
		for _, known := range []bool{false, true} {
			name, want := tc.name, tc.want
			spec := host.Spec{Name: "fake", Direct: true}
			if known {
				name += ", known"
				spec.Known = &host.Known{Description: verify.Description{Name: "fake"}}
				if tc.wantKnown != "" {
					want = tc.wantKnown
				}
			}
			t.Run(name, func(t *testing.T) {
				spec.Path = filepath.Join(t.TempDir(), "fake-direct")
				if err := os.WriteFile(spec.Path, []byte("#!/bin/sh\n"+tc.script+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
				checkDirectFault(t, spec, tc.is, want)
			})
		}
	}
}

// checkDirectFault starts spec, a faulty direct plugin, and checks that
// the start fails with is (if not nil) saying want, in time, and leaves
// no process of it.
func checkDirectFault(t *testing.T, spec host.Spec, is error, want string) {
	t.Helper()
	var logs bytes.Buffer
	cfg := host.Config{StartTimeout: 700 * time.Millisecond, Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug})}
	start := time.Now()
	_, err := host.Start(context.Background(), spec, cfg)
	if err == nil {
		t.Fatal("started; want an error")
	}
	if is != nil && !errors.Is(err, is) {
		t.Errorf("err = %v, want %v", err, is)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to say %q", err, want)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("failed start took %s", d)
	}
	if !wait.Until(5*time.Second, func() bool { return len(processesRunning(spec.Path)) == 0 }) {
		t.Errorf("processes of %s left running: %v", spec.Path, processesRunning(spec.Path))
	}
}

// processesRunning lists live processes whose command line names path.
func processesRunning(path string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || zombie(pid) {
			continue
		}
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); bytes.Contains(b, []byte(path)) {
			out = append(out, pid)
		}
	}
	return out
}

// The built-ins binary logs through the host under the verifier's name,
// and its last lines are out before Close returns.
func TestDirectPluginLogsGoByTheVerifierName(t *testing.T) {
	list := filepath.Join(t.TempDir(), "pins")
	if err := os.WriteFile(list, []byte("sha256:"+strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	cfg := host.Config{Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug})}
	p, err := host.Start(context.Background(), builtinSpec(t, "direct", "allowlist", verify.Options{"file": {list}}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if want := "allowlist: loaded 1 pin from " + list; !strings.Contains(logs.String(), want) {
		t.Fatalf("host log lacks %q:\n%s", want, logs.String())
	}
	if strings.Contains(logs.String(), "allowlist: allowlist:") {
		t.Fatalf("the verifier's name is said twice:\n%s", logs.String())
	}
}

// A spec that says what the plugin is (Known) starts without asking it;
// Describe, whose job is to ask, always does.
func TestDirectKnownSkipsDescribe(t *testing.T) {
	ctx := context.Background()
	spec := builtinSpec(t, "direct", "md5pin", verify.Options{"pin": {md5hex(newCert(t))}})
	asked, err := host.Describe(ctx, spec, host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	known := *asked
	known.Summary = "known to the host"
	spec.Known = &host.Known{Description: known}

	p, err := host.Start(ctx, spec, host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if d, _ := p.Describe(ctx); d.Summary != known.Summary {
		t.Errorf("started with Known: summary %q, want %q (the plugin was asked)", d.Summary, known.Summary)
	}
	again, err := host.Describe(ctx, spec, host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Summary != asked.Summary {
		t.Errorf("Describe with Known: summary %q, want the plugin's %q", again.Summary, asked.Summary)
	}
}

// A pinned tlspin-builtins runs from the descriptor its checksum was
// computed from (fd 3), so its channel is the next descriptor: the
// handshake line must name that one, and calls work.
func TestDirectPinnedChannel(t *testing.T) {
	cert := newCert(t)
	spec := md5Spec(t, "direct", verify.Options{"pin": {md5hex(cert)}})
	bin, err := os.ReadFile(spec.Path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	spec.SHA256 = sum[:]
	p, err := host.Start(context.Background(), spec, host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.Pid()))
	if err == nil && !bytes.Contains(env, []byte("TLSPIN_PLUGIN_CHANNEL_FD=4\x00")) {
		t.Errorf("a pinned plugin's channel: environment %q; want descriptor 4", env)
	}
	v, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{cert}})
	if err != nil || !v.Allow {
		t.Fatalf("Verify = %+v, %v; want allowed", v, err)
	}
}

// earlyDirectArg makes the test binary earlyDirectPlugin.
const earlyDirectArg = "__early-direct"

// earlyDirectPlugin plays a tlspin-builtins that writes its handshake
// line only once the host has offered it a connection, then serves an
// allowing verifier: a host that waited for the line to configure it
// would wait until its start timeout.
func earlyDirectPlugin() int {
	ch, fd, err := direct.PluginChannel(os.Getenv(direct.EnvChannel))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rc, err := ch.SyscallConn()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	offered := false
	rc.Control(func(s uintptr) {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(s), Events: unix.POLLIN}}, 10_000)
		offered = err == nil && n > 0
	})
	if !offered {
		fmt.Fprintln(os.Stderr, "no connection offered before the handshake line")
		return 1
	}
	io.WriteString(os.Stdout, direct.HandshakeLine(fd))
	if err := direct.Serve(context.Background(), ch, allowAll{}, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// allowAll is a verifier that allows every peer.
type allowAll struct{}

func (allowAll) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{Name: "early"}, nil
}

func (allowAll) Configure(context.Context, *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	return &verify.ConfigureResponse{}, nil
}

func (allowAll) Verify(context.Context, *verify.Request) (*verify.Verdict, error) {
	return &verify.Verdict{Allow: true, Reason: "early"}, nil
}

// A built-in the host knows is configured while its process starts: the
// request is on its way before the handshake line, which a plugin may
// then write only once it has a connection offered.
func TestDirectKnownConfiguresEarly(t *testing.T) {
	spec := host.Spec{Name: "early", Path: os.Args[0], Args: []string{earlyDirectArg}, Direct: true,
		Known: &host.Known{Description: verify.Description{Name: "early"}}}
	p, err := host.Start(context.Background(), spec, host.Config{StartTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("start of a plugin that waits for the Configure: %v", err)
	}
	defer p.Close()
	if v, err := p.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{newCert(t)}}); err != nil || !v.Allow {
		t.Fatalf("Verify = %+v, %v; want its allow", v, err)
	}
}
