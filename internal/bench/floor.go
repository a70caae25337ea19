package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/rawio"
)

// Floor is the least a verifier in another process can cost on this
// machine: before each Verify of an in-process decider it sends the peer's
// leaf to cat(1) on a pipe and reads it back from another, one round trip
// to a process that does nothing but answer, with the direct client's own
// reads and writes (internal/rawio). What a plugin costs beyond the floor
// is the protocol's and the verifier's; the floor itself is the kernel's
// and the machine's (two context switches and a wake-up per call), which
// no plugin can go below.
//
// Calls take turns on the one cat, as calls to tlspin-builtins take turns
// on its one thread.
type Floor struct {
	inner verify.Decider
	cmd   *exec.Cmd

	mu   sync.Mutex
	w, r io.ReadWriter // rawio over toCat and fromCat
	// toCat and fromCat are this side's ends of the two pipes.
	toCat, fromCat *os.File
	back           []byte
	deadline       bool  // the pipes have one set
	broken         error // the first failed round trip's, for every later call
}

// ErrNoFloor wraps why the floor could not be measured (no cat on the
// PATH, or one that does not start).
var ErrNoFloor = errors.New("bench: no floor")

// StartFloor starts cat, found on the PATH, and returns the Floor that
// asks inner after each round trip to it. Close stops cat.
func StartFloor(inner verify.Decider) (*Floor, error) {
	path, err := exec.LookPath("cat")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoFloor, err)
	}
	in, toCat, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoFloor, err)
	}
	fromCat, out, err := os.Pipe()
	if err != nil {
		in.Close()
		toCat.Close()
		return nil, fmt.Errorf("%w: %w", ErrNoFloor, err)
	}
	cmd := exec.Command(path)
	cmd.Stdin, cmd.Stdout = in, out // stderr: the null device
	err = cmd.Start()
	in.Close()
	out.Close()
	if err != nil {
		toCat.Close()
		fromCat.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrNoFloor, path, err)
	}
	return &Floor{
		inner: inner, cmd: cmd,
		w: rawio.Quiet(toCat), r: rawio.QuietLinger(fromCat),
		toCat: toCat, fromCat: fromCat,
	}, nil
}

// Pid is cat's process id.
func (f *Floor) Pid() int { return f.cmd.Process.Pid }

// Verify sends req's leaf to cat, reads it back, then asks the in-process
// decider. A round trip that fails (cat gone, ctx's deadline passed) is an
// error, and every later call fails with it.
func (f *Floor) Verify(ctx context.Context, req *verify.Request) (*verify.Verdict, error) {
	if len(req.PeerChain) == 0 {
		return f.inner.Verify(ctx, req)
	}
	if err := f.roundTrip(ctx, req.PeerChain[0]); err != nil {
		return nil, err
	}
	return f.inner.Verify(ctx, req)
}

func (f *Floor) roundTrip(ctx context.Context, leaf []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken != nil {
		return f.broken
	}
	var err error
	if d, ok := ctx.Deadline(); ok || f.deadline {
		err = errors.Join(f.toCat.SetDeadline(d), f.fromCat.SetDeadline(d))
		f.deadline = ok
	}
	if err == nil {
		_, err = f.w.Write(leaf)
	}
	if err == nil {
		if cap(f.back) < len(leaf) {
			f.back = make([]byte, len(leaf))
		}
		_, err = io.ReadFull(f.r, f.back[:len(leaf)])
	}
	if err != nil {
		f.broken = fmt.Errorf("bench: floor: round trip to cat: %w", err)
		return f.broken
	}
	return nil
}

// Close stops cat: the end of its input ends it.
func (f *Floor) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.toCat.Close()
	done := make(chan error, 1)
	go func() { done <- f.cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		f.cmd.Process.Kill()
		err = <-done
	}
	f.fromCat.Close()
	return err
}
