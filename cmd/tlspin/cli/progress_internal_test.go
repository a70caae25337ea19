package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestProgressOnlyOnTerminal(t *testing.T) {
	var buf bytes.Buffer
	off := newProgress(&buf, "bench")
	off.Step(1, 2, "a")
	off.Timed(2, 2, "b", time.Second)
	off.Done()
	if buf.Len() != 0 {
		t.Fatalf("progress written to a non-terminal: %q", buf.String())
	}

	on := &progress{w: &buf, name: "bench"}
	on.Step(1, 2, "starting")
	on.Timed(2, 2, "handshakes", 2*time.Second)
	time.Sleep(600 * time.Millisecond) // let the timer redraw once
	on.Done()
	got := buf.String()
	for _, want := range []string{"\r\033[Ktlspin: bench: [1/2] starting", "\r\033[Ktlspin: bench: [2/2] handshakes: 0s of about 2s"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress %q lacks %q", got, want)
		}
	}
	if !strings.HasSuffix(got, "\r\033[K") {
		t.Errorf("line not cleared at the end: %q", got)
	}
}

func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) || isTerminal(&bytes.Buffer{}) {
		t.Error("a pipe or a buffer is taken for a terminal")
	}
}
