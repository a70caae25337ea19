//go:build unix

package tofu

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/verifiers/internal/vtest"
)

// TestStoreBehindASymlink: ~/.tlspin/known_pins is a link to a shared
// store. It was read through the link, but the first recording renamed a
// new file over the link, a private copy that later revocations in the
// shared store never reached, locked in the link's directory. The store
// is resolved when tofu starts: the link stays a link, the pin goes to
// the file it leads to, under the lock next to it, and so do known-pins
// edits made through the link; a revocation in the shared store then
// takes effect.
func TestStoreBehindASymlink(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the link (the path tofu is given) and the store
		setup func(t *testing.T, root string) (link, store string)
	}{
		{"a link to the store", func(t *testing.T, root string) (string, string) {
			mkdir(t, filepath.Join(root, "shared"), 0o700)
			store := filepath.Join(root, "shared", "known_pins")
			vtest.WriteFile(t, store, []byte("# shared\n"))
			return linkIn(t, root, store), store
		}},
		{"a link to a store not created yet", func(t *testing.T, root string) (string, string) {
			mkdir(t, filepath.Join(root, "shared"), 0o700)
			store := filepath.Join(root, "shared", "known_pins")
			return linkIn(t, root, store), store
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			link, store := tt.setup(t, root)
			v, err := newTofu(t, verify.Options{"file": {link}})
			if err != nil {
				t.Fatal(err)
			}
			a := vtest.New(t, vtest.Spec{CN: "a"})
			if verdict := vtest.Handshake(t, v, req(a, "127.0.0.1:1")); !verdict.Allow || !strings.Contains(verdict.Matched, link) {
				t.Fatalf("first use: %+v, want it allowed and named after %s", verdict, link)
			}
			isLink(t, link, store)
			if db, err := readKnown(store); err != nil || len(db.byKey["127.0.0.1:1"]) != 1 {
				t.Fatalf("the store does not hold the pin: %v", err)
			}
			if _, err := os.Lstat(store + lockSuffix); err != nil {
				t.Errorf("not locked next to the store: %v", err)
			}
			if _, err := os.Lstat(link + lockSuffix); err == nil {
				t.Error("locked next to the link")
			}

			// known-pins through the link edits the store too.
			b := vtest.New(t, vtest.Spec{CN: "b"})
			if _, _, err := AddPin(context.Background(), link, "127.0.0.1:2", peerPin(t, req(b, "127.0.0.1:2")), ""); err != nil {
				t.Fatal(err)
			}
			isLink(t, link, store)

			// A revocation in the shared store reaches this user: the
			// removed pin is gone, and another key is a first use, not
			// a change.
			if _, err := RemovePins(context.Background(), store, func(k string) bool { return k == "127.0.0.1:1" }); err != nil {
				t.Fatal(err)
			}
			renewed := vtest.New(t, vtest.Spec{CN: "a"})
			if verdict := vtest.Verify(t, v, req(renewed, "127.0.0.1:1")); !verdict.Allow || !strings.Contains(verdict.Matched, "first use") {
				t.Errorf("after the shared store dropped the pin: %+v, want a first use", verdict)
			}
			if verdict := vtest.Verify(t, v, req(b, "127.0.0.1:2")); !verdict.Allow {
				t.Errorf("the pin added through the link: %+v", verdict)
			}
		})
	}
}

// linkIn makes root/home/.tlspin/known_pins a link to store.
func linkIn(t *testing.T, root, store string) string {
	t.Helper()
	dir := filepath.Join(root, "home", ".tlspin")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "known_pins")
	symlink(t, store, link)
	return link
}

// isLink fails the test unless link is still a symbolic link to store.
func isLink(t *testing.T, link, store string) {
	t.Helper()
	if target, err := os.Readlink(link); err != nil || target != store {
		t.Fatalf("ATTACK: %s is no longer a link to the shared store (%q, %v): a private copy", link, target, err)
	}
}
