package cache_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/cache"
	"github.com/tlspin/tlspin/core/verify"
)

// TestEntriesDoNotKeepThePeersNames fills the cache with the verdicts a
// client can have cached without holding any key: a certificate of its
// own, rejected (pin verifiers cache rejections for a minute), sent
// with a server name (SNI) of 60 KB, another on each connection.
// crypto/tls takes such a name (up to the 64 KiB of a ClientHello), and
// the verdict is asked before the client proves its key. The cache keeps
// at most MaxEntries verdicts, but it kept each name in its key: 4,096
// such clients, a few seconds' work, held some 250 MB of tlspin serve's
// memory for a minute, and again as often as they came back.
func TestEntriesDoNotKeepThePeersNames(t *testing.T) {
	const (
		entries = 256
		name    = 60 << 10
		// What an entry may hold: its key, the verdict and their
		// bookkeeping, far less than a name.
		perEntry = 4 << 10
	)
	c := cache.New(cache.Config{MaxEntries: entries})
	d := c.Wrap("fake", &fake{cacheFor: time.Minute})
	before := heap()
	for i := range entries {
		sni := fmt.Sprintf("%d.%s", i, strings.Repeat("a", name))
		if v, err := d.Verify(context.Background(), req("own certificate", sni, verify.ServerVerifiesClient, "192.0.2.1:40000")); err != nil || v.Allow {
			t.Fatalf("Verify = %+v, %v; want a rejection", v, err)
		}
	}
	if st := c.Stats(); st.Entries != entries {
		t.Fatalf("stats = %+v, want %d entries", st, entries)
	}
	grown := int64(heap()) - int64(before)
	runtime.KeepAlive(c)
	if grown > entries*perEntry {
		t.Fatalf("the cache holds %d KiB for %d verdicts (%d bytes each), want at most %d bytes each: it keeps the names the clients sent", grown>>10, entries, grown/entries, perEntry)
	}
}

// heap returns the bytes of live objects, once the garbage is collected.
func heap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
