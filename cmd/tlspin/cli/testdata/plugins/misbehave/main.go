// Command misbehave is a test verifier plugin that fails on purpose while
// verifying: option mode=crash exits, mode=hang never answers, mode=garbage
// returns no verdict, mode=reject rejects and mode=error returns an error,
// both with text that looks like a usage error, mode=escape rejects with
// terminal escape sequences and a forged line in its reason, and
// mode=allow allows everything (to prove the plugin itself works).
package main

import (
	"context"
	"errors"
	"os"

	"github.com/tlspin/tlspin/core/sdk"
	"github.com/tlspin/tlspin/core/verify"
)

type misbehave struct{ mode string }

func (m *misbehave) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{Name: "misbehave", Summary: "fails on purpose (tests)", Options: []verify.Option{{Name: "mode", Required: true}}}, nil
}

func (m *misbehave) Configure(ctx context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	d, _ := m.Describe(ctx)
	if err := verify.CheckOptions(d, req.Options); err != nil {
		return nil, err
	}
	m.mode = req.Options["mode"][0]
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
	}
	return &verify.Verdict{Allow: true, Matched: "anything"}, nil
}

func main() { sdk.Serve(&misbehave{}) }
