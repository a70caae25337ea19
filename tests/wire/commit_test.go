package wire_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/testpy"
)

// pyFirstUse is commitplugin's verifier written with the Python SDK.
const pyFirstUse = `#!/usr/bin/python3
import tlspin_sdk as sdk
from tlspin_sdk import pb

class FirstUse:
    def describe(self):
        return pb.DescribeResponse(name="firstuse", version="1", summary="record a new peer once its handshake succeeded",
                                   options=[pb.Option(name="file", required=True, description="where peers are recorded")])
    def configure(self, options):
        self.file = options.string("file")
    def decide(self, req):
        if not req.peer_chain:
            return sdk.reject("peer sent no certificate")
        return sdk.allow("first use of " + req.server_name, commit=True)
    def verify(self, req):
        return self.decide(req)
    def commit(self, req):
        if not self.decide(req).allow:
            raise ValueError("would not allow this peer now")
        with open(self.file, "a") as f:
            f.write(req.server_name + "\n")

sdk.serve(FirstUse())
`

// nodeFirstUse is the same verifier written with the Node example's
// goplugin.js, whose absolute path replaces GOPLUGIN.
const nodeFirstUse = `#!/usr/bin/env node
'use strict';
const fs = require('node:fs');
const { serve } = require(GOPLUGIN);

class FirstUse {
  describe() {
    return { name: 'firstuse', version: '1', summary: 'record a new peer once its handshake succeeded',
      options: [{ name: 'file', required: true, description: 'where peers are recorded' }] };
  }
  configure(options) { this.file = options.file[0]; return {}; }
  decide(req) {
    if (!req.peer_chain.length) return { allow: false, reason: 'peer sent no certificate' };
    return { allow: true, reason: 'first use of ' + req.server_name, commit: true };
  }
  verify(req) { return this.decide(req); }
  commit(req) {
    if (!this.decide(req).allow) throw new Error('would not allow this peer now');
    fs.appendFileSync(this.file, req.server_name + '\n');
  }
}
serve(new FirstUse()).catch((e) => { process.stderr.write(String(e) + '\n'); process.exit(1); });
`

// nodePlugin writes nodeFirstUse to a temporary directory: goplugin.js is
// required by its absolute path and finds its node_modules itself. It
// skips the test without node or the example's node_modules (npm ci),
// except in CI, where .ci/run installs both.
func nodePlugin(t *testing.T) string {
	t.Helper()
	goplugin, err := filepath.Abs("../../examples/node-verifier/goplugin.js")
	if err != nil {
		t.Fatal(err)
	}
	var msg string
	if _, err := exec.LookPath("node"); err != nil {
		msg = "node not found (apt-get install nodejs npm)"
	} else if _, err := os.Stat(filepath.Join(filepath.Dir(goplugin), "node_modules", "@grpc", "grpc-js")); err != nil {
		msg = "examples/node-verifier/node_modules missing: run `npm ci` there"
	}
	if msg != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	path := filepath.Join(t.TempDir(), "tlspin-verifier-firstuse")
	if err := os.WriteFile(path, []byte(strings.Replace(nodeFirstUse, "GOPLUGIN", strconv.Quote(goplugin), 1)), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// Doc: Commit is optional. A verifier that records on a decision answers
// Verify with commit set and records nothing; the host calls Commit with
// the same request after the handshake, and the verifier decides again
// (an error records nothing, and does not restart it). Through core/host
// with a Go SDK verifier implementing verify.Committer, a Python SDK
// verifier with commit(), and one with commit() on the Node example's
// goplugin.js.
func TestCommit(t *testing.T) {
	tests := []struct {
		name string
		path func(t *testing.T) string
	}{
		{"Go SDK", func(t *testing.T) string {
			return testbin.Build(t, "./tests/wire/testdata/commitplugin", "tlspin-verifier-firstuse")
		}},
		{"Python SDK", func(t *testing.T) string {
			testpy.Need(t)
			src := filepath.Join(t.TempDir(), "tlspin-verifier-firstuse")
			if err := os.WriteFile(src, []byte(pyFirstUse), 0o755); err != nil {
				t.Fatal(err)
			}
			return testpy.Plugin(t, src, t.TempDir())
		}},
		{"Node example", nodePlugin},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "recorded")
			p, _, err := startSpec(t, host.Spec{Name: "firstuse", Path: tc.path(t), Options: verify.Options{"file": {file}}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			recorded := func() string {
				b, err := os.ReadFile(file)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				return string(b)
			}
			req := &verify.Request{PeerChain: [][]byte{leaf(t)}, ServerName: "a.example", Side: verify.ClientVerifiesServer}
			v, err := p.Verify(context.Background(), req)
			if err != nil || !v.Allow || !v.Commit {
				t.Fatalf("Verify = %+v, %v; want an allow with commit set", v, err)
			}
			if got := recorded(); got != "" {
				t.Fatalf("recorded %q in Verify", got)
			}
			if _, err := p.Commit(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			if got := recorded(); got != "a.example\n" {
				t.Fatalf("recorded %q after Commit; want a.example", got)
			}
			_, err = p.Commit(context.Background(), &verify.Request{ServerName: "b.example", Side: verify.ClientVerifiesServer})
			if err == nil || !strings.Contains(err.Error(), "would not allow this peer now") {
				t.Fatalf("Commit of a peer it would reject: %v; want the verifier's error", err)
			}
			if got := recorded(); got != "a.example\n" || p.Restarts() != 0 {
				t.Fatalf("recorded %q, %d restarts after a failed commit; want nothing more and no restart", got, p.Restarts())
			}
		})
	}
}

// Doc: a plugin that does not implement Commit (UNIMPLEMENTED) has nothing
// to commit: the host's Commit succeeds, and the plugin keeps answering.
func TestWithoutCommit(t *testing.T) {
	p, _, err := startRaw(t, "controller,stdio,san")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	mustVerify(t, p)
	if _, err := p.Commit(context.Background(), &verify.Request{PeerChain: [][]byte{leaf(t)}}); err != nil {
		t.Fatalf("Commit to a plugin without it: %v; want nothing to commit", err)
	}
	mustVerify(t, p)
	if p.Restarts() != 0 {
		t.Error("the plugin was restarted")
	}
}
