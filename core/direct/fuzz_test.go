package direct_test

import (
	"bufio"
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/direct"
	"github.com/tlspin/tlspin/core/verify"
)

// FuzzAnswer feeds whatever a hostile plugin might send back to a Verify
// call: the host gets a verdict that passed verify.CleanVerdict, the
// verifier's own error, or an error that says the plugin is at fault;
// never a panic, never a verdict and an error together, never neither.
func FuzzAnswer(f *testing.F) {
	for _, seed := range [][]byte{
		direct.EncodeVerdict(verify.Verdict{Allow: true, Matched: "pin", CacheFor: time.Minute}),
		direct.EncodeVerdict(verify.Verdict{Reason: "no"}),
		direct.EncodeVerdict(verify.Verdict{Allow: true, CacheFor: -1}),
		{1, 7, 'b', 'a', 'd', ' ', 'p', 'i', 'n', 1}, // the verifier's error, a bad option
		direct.EncodeEmpty(), {}, {9}, {direct.KindVerdict, 2},
	} {
		f.Add(frameOf(1, seed))
	}
	f.Add(frameOf(2, direct.EncodeVerdict(verify.Verdict{Allow: true}))) // another request's
	f.Add(lyingFrame(0xffffffff, 1, nil))
	f.Add(lyingFrame(10, 1, []byte{'{'}))
	f.Fuzz(func(t *testing.T, answer []byte) {
		host, sock := channel(t)
		go func() {
			plugin, err := direct.TakePipes(sock)
			if err != nil {
				return
			}
			defer plugin.Close()
			// Read the request's frame, then answer with the fuzzed bytes.
			if _, _, err := readRequest(bufio.NewReader(plugin)); err != nil {
				return
			}
			_, _ = plugin.Write(answer)
		}()
		c := direct.NewClient(host, 1)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		v, err := c.Verify(ctx, &verify.Request{PeerChain: [][]byte{{1, 2, 3}}})
		switch {
		case err == nil && v == nil:
			t.Fatal("no verdict and no error")
		case err != nil && v != nil:
			t.Fatalf("a verdict %+v with an error %v", v, err)
		case err != nil:
			var remote *direct.RemoteError
			if !errors.Is(err, direct.ErrGarbage) && !errors.Is(err, direct.ErrTransport) && !errors.As(err, &remote) {
				t.Fatalf("error %v is neither the plugin's fault nor the verifier's own answer", err)
			}
			if remote != nil && len(remote.Message) > verify.MaxTextLen+64 {
				t.Fatalf("verifier error of %d bytes kept", len(remote.Message))
			}
		default:
			if v.CacheFor < 0 || v.CacheFor > verify.MaxCacheFor || len(v.Reason) > verify.MaxTextLen+64 || len(v.Matched) > verify.MaxTextLen+64 {
				t.Fatalf("verdict not cleaned: cache %v, reason %d bytes, matched %d bytes", v.CacheFor, len(v.Reason), len(v.Matched))
			}
		}
	})
}

// socketpair is syscall.Socketpair for a unix stream, close-on-exec.
func socketpair() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	return fds, err
}
