// Command misbehave is a test verifier plugin that fails on purpose while
// verifying: option mode=crash exits, mode=hang never answers, mode=garbage
// returns no verdict, mode=reject rejects and mode=error returns an error,
// both with text that looks like a usage error, mode=escape rejects with
// terminal escape sequences and a forged line in its reason, and
// mode=allow allows everything (to prove the plugin itself works),
// mode=bare too, giving neither a reason nor what matched, and
// mode=crash-if-file allows until the file named by option file exists,
// then exits.
//
// Built as tlspin-verifier-misbehave-escape, it describes itself with
// terminal escape sequences in every field: Describe has no options to
// choose a mode with, and the host passes on none of its environment.
// Built as tlspin-verifier-misbehave-slow, it takes slowStart to answer
// Describe, and as long to answer Configure: each call within a start
// timeout a little longer, the whole start not.
package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/tlspin/tlspin/core/sdk"
	"github.com/tlspin/tlspin/core/verify"
)

type misbehave struct{ mode, file string }

// hostile is what a plugin would like on the user's terminal: a window
// title, a cleared screen, and a carriage return that overwrites the line.
const hostile = "\x1b]0;pwned\x07\x1b[2J\rtlspin: sent"

// slowStart is how long tlspin-verifier-misbehave-slow takes to answer
// Describe, and Configure.
const slowStart = 1500 * time.Millisecond

func (m *misbehave) Describe(context.Context) (*verify.Description, error) {
	if filepath.Base(os.Args[0]) == "tlspin-verifier-misbehave-slow" {
		time.Sleep(slowStart)
	}
	if filepath.Base(os.Args[0]) == "tlspin-verifier-misbehave-escape" {
		return &verify.Description{Name: "n" + hostile, Version: "v" + hostile, Summary: "s" + hostile,
			Options: []verify.Option{{Name: "o" + hostile, Description: "d" + hostile}}}, nil
	}
	return &verify.Description{Name: "misbehave", Summary: "fails on purpose (tests)", Options: []verify.Option{{Name: "mode", Required: true}, {Name: "file"}}}, nil
}

func (m *misbehave) Configure(ctx context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	d, _ := m.Describe(ctx) // tlspin-verifier-misbehave-slow: slowStart
	if err := verify.CheckOptions(d, req.Options); err != nil {
		return nil, err
	}
	m.mode = req.Options["mode"][0]
	if f := req.Options["file"]; len(f) > 0 {
		m.file = f[0]
	}
	return &verify.ConfigureResponse{}, nil
}

func (m *misbehave) Verify(ctx context.Context, _ *verify.Request) (*verify.Verdict, error) {
	switch m.mode {
	case "crash":
		os.Exit(3)
	case "hang":
		<-make(chan struct{})
	case "garbage":
		return nil, nil
	case "reject":
		return &verify.Verdict{Reason: "accepts only known peers: invalid argument \"x\" for \"--pin\" flag"}, nil
	case "error":
		return nil, errors.New("unknown flag: --invalid argument, accepts 1 arg(s)")
	case "escape":
		return &verify.Verdict{Reason: "no\x1b]0;pwned\x07\x1b[2J\rtlspin: sent; server verified OK\nforged line"}, nil
	case "bare":
		return &verify.Verdict{Allow: true}, nil
	case "crash-if-file":
		if _, err := os.Stat(m.file); err == nil {
			os.Exit(3)
		}
	}
	return &verify.Verdict{Allow: true, Matched: "anything"}, nil
}

func main() { sdk.Serve(&misbehave{}) }
