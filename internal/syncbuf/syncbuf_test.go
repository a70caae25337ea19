package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// Concurrent writers and readers: every write is kept whole (run with
// -race to check the locking).
func TestConcurrent(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("ab"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := b.String(); len(got) != 1600 || strings.Count(got, "ab") != 800 {
		t.Fatalf("%d bytes, %d writes kept whole; want 1600, 800", len(got), strings.Count(got, "ab"))
	}
}
