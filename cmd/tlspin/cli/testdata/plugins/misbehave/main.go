// Command misbehave is a test verifier plugin that fails on purpose while
// verifying: option mode=crash exits, mode=hang never answers, mode=allow
// allows everything (to prove the plugin itself works).
package main

import (
	"context"
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
	}
	return &verify.Verdict{Allow: true, Matched: "anything"}, nil
}

func main() { sdk.Serve(&misbehave{}) }
