package nodeverifier_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
)

// firstUse is a verifier written with goplugin.js that records a peer in
// commit(), deciding again there, as README.md says.
const firstUse = `#!/usr/bin/env node
'use strict';
const fs = require('node:fs');
const { serve } = require(GOPLUGIN);

class FirstUse {
  describe() {
    return { name: 'firstuse', version: '1', summary: 'records a new peer once its handshake succeeded',
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

// TestCommit: a verifier with commit() receives the host's Commit after an
// allow with commit set, and records only then; a failed re-decision is
// an error that records nothing. cnpin, without commit(), answers
// UNIMPLEMENTED, which the host takes as nothing to commit.
func TestCommit(t *testing.T) {
	needNode(t)
	goplugin, err := filepath.Abs("goplugin.js")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "tlspin-verifier-firstuse")
	if err := os.WriteFile(script, []byte(strings.Replace(firstUse, "GOPLUGIN", strconv.Quote(goplugin), 1)), 0o755); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(dir, "recorded")
	p, err := host.Start(context.Background(), host.Spec{Name: "firstuse", Path: script, Options: verify.Options{"file": {record}}}, config(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	recorded := func() string {
		b, err := os.ReadFile(record)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return string(b)
	}
	req := &verify.Request{PeerChain: [][]byte{selfSigned(t, "a")}, ServerName: "a.example", Side: verify.ClientVerifiesServer}
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

	cn, err := start(t, verify.Options{"cn": {"a"}})
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	cnReq := &verify.Request{PeerChain: [][]byte{selfSigned(t, "a")}, Side: verify.ClientVerifiesServer}
	if _, err := cn.Commit(context.Background(), cnReq); err != nil {
		t.Fatalf("Commit to a verifier without commit(): %v; want nothing to commit", err)
	}
	if v, err := cn.Verify(context.Background(), cnReq); err != nil || !v.Allow || v.Commit || cn.Restarts() != 0 {
		t.Fatalf("after Commit: Verify = %+v, %v, %d restarts", v, err, cn.Restarts())
	}
}
