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
)

// pyHangs is a Python SDK verifier whose verify never returns.
const pyHangs = `#!/usr/bin/python3
import threading
import tlspin_sdk as sdk
from tlspin_sdk import pb

class Hangs:
    def describe(self):
        return pb.DescribeResponse(name="hangs", version="1", summary="never answers verify")
    def configure(self, options):
        pass
    def verify(self, req):
        threading.Event().wait()

sdk.serve(Hangs())
`

// nodeHangs is the same verifier on the Node example's goplugin.js.
const nodeHangs = `#!/usr/bin/env node
'use strict';
const { serve } = require(GOPLUGIN);
serve({
  describe: () => ({ name: 'hangs', version: '1', summary: 'never answers verify', options: [] }),
  configure: () => ({}),
  verify: () => new Promise(() => {}),
}).catch((e) => { process.stderr.write(String(e)); process.exit(1); });
`

// Doc: after the host's Shutdown a plugin exits promptly, even with a
// call of its verifier still unanswered (one that hangs: the host gave
// up on it). A plugin that did not exit is killed 0.5 s later with a
// warning that blames its Controller service, which these serve.
func TestShutdownWithAHungCall(t *testing.T) {
	tests := []struct {
		name string
		path func(t *testing.T) string
	}{
		{"Python SDK", func(t *testing.T) string {
			testpy.Need(t)
			src := filepath.Join(t.TempDir(), "tlspin-verifier-hangs")
			if err := os.WriteFile(src, []byte(pyHangs), 0o755); err != nil {
				t.Fatal(err)
			}
			return testpy.Plugin(t, src, t.TempDir())
		}},
		{"Node example", func(t *testing.T) string {
			nodePlugin(t) // skips without node
			goplugin, err := filepath.Abs("../../examples/node-verifier/goplugin.js")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "tlspin-verifier-hangs")
			if err := os.WriteFile(path, []byte(strings.Replace(nodeHangs, "GOPLUGIN", strconv.Quote(goplugin), 1)), 0o755); err != nil {
				t.Fatal(err)
			}
			return path
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, l, err := startPlugin(t, tc.path(t))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			v, err := p.Verify(ctx, &verify.Request{PeerChain: [][]byte{leaf(t)}})
			cancel()
			if err == nil {
				t.Fatalf("verdict %+v from a verifier that never answers", v)
			}
			closeAndWait(t, p)
			if out := l.String(); strings.Contains(out, "did not exit within the grace period") {
				t.Errorf("the plugin did not exit after Shutdown with a call unanswered; it was killed:\n%s", out)
			}
		})
	}
}
