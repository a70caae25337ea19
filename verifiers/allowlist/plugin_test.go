package allowlist_test

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/files"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
	"github.com/tlspin/tlspin/verifiers/internal/vtest"
)

func TestMain(m *testing.M) { testbin.Main(m) }

func entry(t *testing.T, c *vtest.Cert) string {
	return "spki:" + c.Pin(t, pin.SPKI, pin.FormatBase64) + "\n"
}

// TestReloadThroughPlugin edits the list under a running plugin process:
// a good edit is picked up and announced; a bad one is logged with
// FILE:LINE, and a pin it removed is no longer trusted, which is
// announced too.
func TestReloadThroughPlugin(t *testing.T) {
	a := vtest.New(t, vtest.Spec{CN: "a"})
	b := vtest.New(t, vtest.Spec{CN: "b"})
	path := filepath.Join(t.TempDir(), "pins.txt")
	vtest.WriteFile(t, path, []byte("# allowed peers\n"+entry(t, a)))
	p, logs := vtest.Start(t, "allowlist", verify.Options{"file": {path}})
	var changes atomic.Int32
	p.OnPolicyChange(func(pc verify.PolicyChange) {
		if pc.Epoch > 0 { // the verifier's own, not the host's
			changes.Add(1)
		}
	})
	allows := func(c *vtest.Cert) bool {
		return vtest.Verify(t, p, &verify.Request{PeerChain: vtest.Chain(c)}).Allow
	}
	if !allows(a) || allows(b) {
		t.Fatal("before the edit: want a allowed and b rejected")
	}

	tmp := filepath.Join(filepath.Dir(path), ".pins.txt.tmp")
	vtest.WriteFile(t, tmp, []byte("# allowed peers\n"+entry(t, a)+entry(t, b)))
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if !wait.Until(10*time.Second, func() bool { return allows(b) }) {
		t.Fatal("b still rejected after being added to the list")
	}
	if !wait.Until(10*time.Second, func() bool { return changes.Load() > 0 }) {
		t.Error("the reload was not announced as a policy change")
	}

	// Written whole: a reload that saw the file still empty would rightly
	// drop both. It removes b.
	announced := changes.Load()
	if err := files.WriteAtomic(path, []byte("# allowed peers\n"+entry(t, a)+"spki:not-a-pin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !logs.WaitFor(10*time.Second, path+":3:") {
		t.Fatalf("no FILE:LINE error logged for the bad edit; logs:\n%s", logs)
	}
	if allows(b) || !allows(a) {
		t.Fatal("after a bad edit that removes b: want a allowed and b rejected")
	}
	if !wait.Until(10*time.Second, func() bool { return changes.Load() > announced }) {
		t.Error("the narrowed list was not announced as a policy change")
	}
}
