package tofu_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/verifiers/internal/vtest"
	"github.com/tlspin/tlspin/verifiers/tofu"
)

// TestEditPins: pins added and removed with the exported functions are
// what a strict tofu verifier then accepts and rejects, and other lines
// and comments of the file survive.
func TestEditPins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d", "known_pins")
	c := vtest.New(t, vtest.Spec{CN: "peer"})
	d, _ := pin.Sum(pin.SPKI, c.DER())
	p := pin.Pin{Algo: pin.SPKI, Digest: d}
	other := vtest.New(t, vtest.Spec{CN: "other"})
	od, _ := pin.Sum(pin.SPKI, other.DER())

	for _, k := range []string{"keep.example:443", "Peer.Example:8443"} {
		if added, _, err := tofu.AddPin(t.Context(), path, k, pin.Pin{Algo: pin.SPKI, Digest: od}, "kept"); err != nil || !added {
			t.Fatalf("AddPin(%s) = %v, %v", k, added, err)
		}
	}
	added, others, err := tofu.AddPin(t.Context(), path, "peer.example:8443", p, "new")
	if err != nil || !added || len(others) != 1 || others[0].Line != 4 {
		t.Fatalf("AddPin = %v, %+v, %v", added, others, err)
	}
	if added, _, _ := tofu.AddPin(t.Context(), path, "peer.example:8443", p, "again"); added {
		t.Error("the same pin was added twice")
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, %v", st.Mode(), err)
	}

	strict := func() *verify.Verdict {
		v := tofu.New(nil)
		if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{"file": {path}, "mode": {"strict"}}}); err != nil {
			t.Fatal(err)
		}
		return vtest.Verify(t, v, &verify.Request{PeerChain: vtest.Chain(c), ServerName: "peer.example", RemoteAddr: "192.0.2.1:8443", Side: verify.ClientVerifiesServer})
	}
	if v := strict(); !v.Allow {
		t.Fatalf("added pin not accepted: %s", v.Reason)
	}

	removed, err := tofu.RemovePins(t.Context(), path, func(k string) bool { return strings.HasPrefix(k, "peer.example:") })
	if err != nil || len(removed) != 2 {
		t.Fatalf("RemovePins = %+v, %v", removed, err)
	}
	if v := strict(); v.Allow {
		t.Fatal("removed pin still accepted")
	}
	es, err := tofu.ReadPins(path)
	if err != nil || len(es) != 1 || es[0].Key != "keep.example:443" || es[0].Comment != "kept" || !es[0].Pin.Equal(od) {
		t.Fatalf("left: %+v, %v", es, err)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "# tlspin trust-on-first-use pins") {
		t.Errorf("header lost:\n%s", data)
	}
}

// TestAddPinsConcurrently: edits from many processes' worth of callers
// at once all land, as they take the directory lock and reread the file.
func TestAddPinsConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_pins")
	c := vtest.New(t, vtest.Spec{CN: "peer"})
	d, _ := pin.Sum(pin.SPKI, c.DER())
	var wg sync.WaitGroup
	const n = 20
	for i := range n {
		wg.Go(func() {
			if _, _, err := tofu.AddPin(t.Context(), path, fmt.Sprintf("h%d.example:443", i), pin.Pin{Algo: pin.SPKI, Digest: d}, ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	es, err := tofu.ReadPins(path)
	if err != nil || len(es) != n {
		t.Fatalf("%d entries, %v; want %d", len(es), err, n)
	}
}

func TestAddPinRejectsBadKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_pins")
	for _, k := range []string{"", "a b:1", "x#y:1", "evil:1\nvictim:443", "a\r:1", "\ufeffa:1", "a\u200b:1", "a\xff:1"} {
		if _, _, err := tofu.AddPin(t.Context(), path, k, pin.Pin{Algo: pin.SPKI, Digest: make([]byte, 32)}, ""); err == nil {
			t.Errorf("AddPin(%q) accepted", k)
		}
	}
}

// TestRemoveTheLastPin: removing every line of a file written by hand,
// without the header tofu writes, empties it. The edit came back empty,
// which read as "nothing to write": the pin stayed, though RemovePins (and
// known-pins remove) said it had gone.
func TestRemoveTheLastPin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_pins")
	c := vtest.New(t, vtest.Spec{CN: "peer"})
	d, _ := pin.Sum(pin.SPKI, c.DER())
	vtest.WriteFile(t, path, []byte("peer.example:443 "+pin.Pin{Algo: pin.SPKI, Digest: d}.String()+"\n"))
	removed, err := tofu.RemovePins(t.Context(), path, func(string) bool { return true })
	if err != nil || len(removed) != 1 {
		t.Fatalf("RemovePins = %+v, %v", removed, err)
	}
	if es, err := tofu.ReadPins(path); err != nil || len(es) != 0 {
		t.Fatalf("left: %+v, %v; want none", es, err)
	}
}
