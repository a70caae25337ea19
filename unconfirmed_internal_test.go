package tlspin

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/internal/syncbuf"
)

// TestUnconfirmedIsWarnedOnce: a server that never confirms its
// handshakes (net/http with HookServerConfig) lets tofu allow every first
// use without recording it; when such entries expire, the Verifiers warn,
// once, saying what to call.
func TestUnconfirmedIsWarnedOnce(t *testing.T) {
	var logs syncbuf.Buffer
	v, err := StartWith(context.Background(), []string{"sha256pin:pin=" + strings.Repeat("ab", 32)},
		WithLogger(hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.pending.Expired == nil {
		t.Fatal("the pending set reports expiries to nobody")
	}
	v.pending.Expired(2)
	v.pending.Expired(1)
	if n := strings.Count(logs.String(), "were never recorded"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "call Confirm") {
		t.Errorf("the warning does not say what to do:\n%s", logs.String())
	}
}
