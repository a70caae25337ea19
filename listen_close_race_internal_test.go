package tlspin

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestListenRacingClose: Close may run while Listen is past its check of
// a closed v, so that v.listen hooks a listener to an ended context: the
// hook then runs at once in a goroutine of its own and closes the
// listener, which must not read the hook's stop function before listen
// has stored it (a data race, or a call of a nil function).
func TestListenRacingClose(t *testing.T) {
	srvCert, _ := testCert(t, "server")
	_, cliPin := testCert(t, "client")
	for i := range 20 {
		v, err := StartWith(context.Background(), []string{"spkipin:pin=" + cliPin}, WithLogger(hclog.NewNullLogger()))
		if err != nil {
			t.Fatal(err)
		}
		v.Close()
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln := v.listen(inner, srvCert)
		accepted := acceptAsync(ln)
		select {
		case r := <-accepted:
			if !errors.Is(r.err, ErrClosed) || !errors.Is(r.err, net.ErrClosed) {
				t.Fatalf("run %d: Accept = %v, %v; want ErrClosed and net.ErrClosed", i, r.c, r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("run %d: Accept still waiting 10 s after the Verifiers closed", i)
		}
		ln.Close()
	}
}
