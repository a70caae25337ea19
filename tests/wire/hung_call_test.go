package wire_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/testpy"
	"github.com/tlspin/tlspin/internal/wait"
)

// pyHangs is a Python SDK verifier whose verify says it started, then
// never returns.
const pyHangs = `#!/usr/bin/python3
import sys
import threading
import tlspin_sdk as sdk
from tlspin_sdk import pb

class Hangs:
    def describe(self):
        return pb.DescribeResponse(name="hangs", version="1", summary="never answers verify")
    def configure(self, options):
        pass
    def verify(self, req):
        sys.stderr.write("HANGS-IN-VERIFY\n")
        sys.stderr.flush()
        threading.Event().wait()

sdk.serve(Hangs())
`

// nodeHangs is the same verifier on the Node example's goplugin.js, with
// VERIFY for its verify method.
const nodeHangs = `#!/usr/bin/env node
'use strict';
const { serve } = require(GOPLUGIN);
serve({
  describe: () => ({ name: 'hangs', version: '1', summary: 'never answers verify', options: [] }),
  configure: () => ({}),
  verify: VERIFY,
}).catch((e) => { process.stderr.write(String(e)); process.exit(1); });
`

// Doc: after the host's Shutdown a plugin exits promptly, even with a
// call of its verifier unanswered (one that hangs, or the host stops
// while a handshake waits for a slow verifier). A plugin that did not
// exit is killed 0.5 s later with a warning that blames its Controller
// service, which these serve; one the host knows to be stuck in a call
// that its caller gave up on is killed at once.
func TestShutdownWithAHungCall(t *testing.T) {
	tests := []struct {
		name   string
		path   func(t *testing.T) string
		giveUp bool // the caller gives up on the call before Close; else Close runs while it waits
	}{
		{"Python SDK, call in flight", func(t *testing.T) string {
			testpy.Need(t)
			src := filepath.Join(t.TempDir(), "tlspin-verifier-hangs")
			if err := os.WriteFile(src, []byte(pyHangs), 0o755); err != nil {
				t.Fatal(err)
			}
			return testpy.Plugin(t, src, t.TempDir())
		}, false},
		{"Node example, call in flight", func(t *testing.T) string {
			return nodeHangsPlugin(t, `() => { process.stderr.write('HANGS-IN-VERIFY\n'); return new Promise(() => {}); }`)
		}, false},
		// A verify() that never yields blocks Node's event loop: the
		// plugin cannot even read the Shutdown.
		{"Node example, busy, given up", func(t *testing.T) string {
			return nodeHangsPlugin(t, "() => { for (;;) {} }")
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, l, err := startPlugin(t, tc.path(t))
			if err != nil {
				t.Fatal(err)
			}
			req := &verify.Request{PeerChain: [][]byte{leaf(t)}}
			if tc.giveUp {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				v, err := p.Verify(ctx, req)
				cancel()
				if err == nil {
					t.Fatalf("verdict %+v from a verifier that never answers", v)
				}
			} else {
				done := make(chan error, 1)
				go func() {
					_, err := p.Verify(context.Background(), req)
					done <- err
				}()
				if !wait.Until(10*time.Second, func() bool { return strings.Contains(l.String(), "HANGS-IN-VERIFY") }) {
					t.Fatal("the verifier's verify did not start")
				}
				defer func() {
					if err := <-done; err == nil {
						t.Error("a verdict from a verifier that never answers")
					}
				}()
			}
			closeAndWait(t, p)
			if out := l.String(); strings.Contains(out, "did not exit within the grace period") {
				t.Errorf("the plugin did not exit after Shutdown with a call unanswered; it was killed:\n%s", out)
			}
		})
	}
}

// nodeHangsPlugin writes nodeHangs with verify as its verify method.
func nodeHangsPlugin(t *testing.T, verify string) string {
	t.Helper()
	nodePlugin(t) // skips without node
	goplugin, err := filepath.Abs("../../examples/node-verifier/goplugin.js")
	if err != nil {
		t.Fatal(err)
	}
	src := strings.NewReplacer("GOPLUGIN", strconv.Quote(goplugin), "VERIFY", verify).Replace(nodeHangs)
	path := filepath.Join(t.TempDir(), "tlspin-verifier-hangs")
	if err := os.WriteFile(path, []byte(src), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
