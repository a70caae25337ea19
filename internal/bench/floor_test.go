package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/verify"
)

// counting allows every peer and counts the calls.
type counting struct{ calls atomic.Int32 }

func (c *counting) Verify(context.Context, *verify.Request) (*verify.Verdict, error) {
	c.calls.Add(1)
	return &verify.Verdict{Allow: true}, nil
}

func startFloor(t *testing.T, inner verify.Decider) *Floor {
	t.Helper()
	f, err := StartFloor(inner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestFloor: the leaf goes to cat and comes back whole, then the
// in-process decider answers; a request without a chain goes straight
// to it.
func TestFloor(t *testing.T) {
	inner := &counting{}
	f := startFloor(t, inner)
	leaf := make([]byte, 3000)
	rand.Read(leaf)
	for i := range 3 {
		v, err := f.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{leaf}})
		if err != nil || !v.Allow {
			t.Fatalf("call %d: %+v, %v", i, v, err)
		}
		if !bytes.Equal(f.back[:len(leaf)], leaf) {
			t.Fatalf("call %d: cat sent back something else than the leaf", i)
		}
	}
	if _, err := f.Verify(context.Background(), &verify.Request{}); err != nil {
		t.Fatal(err)
	}
	if n := inner.calls.Load(); n != 4 {
		t.Errorf("the in-process decider was asked %d times, want 4", n)
	}
}

// TestFloorFailsClosed: once cat is gone, or does not answer within the
// caller's deadline, every call is an error and the decider is not asked.
func TestFloorFailsClosed(t *testing.T) {
	tests := []struct {
		name     string
		cat      string // a script standing in for cat; "" for the real one, killed
		wait     time.Duration
		deadline bool // the error is the deadline's
	}{
		{"cat killed", "", time.Minute, false},
		{"cat never answers", "#!/bin/sh\nwhile read -r line; do :; done\n", 50 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cat != "" {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "cat"), []byte(tt.cat), 0o755); err != nil {
					t.Fatal(err)
				}
				t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
			}
			inner := &counting{}
			f := startFloor(t, inner)
			if tt.cat == "" {
				f.cmd.Process.Kill()
				f.cmd.Process.Wait()
			}
			for i := range 2 {
				ctx, cancel := context.WithTimeout(context.Background(), tt.wait)
				v, err := f.Verify(ctx, &verify.Request{PeerChain: [][]byte{[]byte("leaf")}})
				cancel()
				if err == nil || v != nil || !strings.Contains(err.Error(), "round trip to cat") || errors.Is(err, os.ErrDeadlineExceeded) != tt.deadline {
					t.Fatalf("call %d: %+v, %v; want the round trip's error (the deadline's: %v)", i, v, err, tt.deadline)
				}
			}
			if n := inner.calls.Load(); n != 0 {
				t.Errorf("the in-process decider was asked %d times after the round trip failed", n)
			}
		})
	}
}

func TestFloorWithoutCat(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	f, err := StartFloor(&counting{})
	if !errors.Is(err, ErrNoFloor) || f != nil || !strings.Contains(err.Error(), "cat") {
		t.Fatalf("StartFloor = %v, %v; want ErrNoFloor naming cat", f, err)
	}
}
