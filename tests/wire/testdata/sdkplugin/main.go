// Command sdkplugin is a verifier written with the Go SDK that prints to
// stdout in Verify, after the handshake, to show where that output goes.
package main

import (
	"context"
	"fmt"

	"github.com/tlspin/tlspin/core/sdk"
	"github.com/tlspin/tlspin/core/verify"
)

// StdoutMarker is what Verify prints.
const StdoutMarker = "SDKPLUGIN-STDOUT-AFTER-HANDSHAKE"

type printer struct{}

func (printer) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{Name: "sdkprint", Version: "1"}, nil
}

func (printer) Configure(context.Context, *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	return &verify.ConfigureResponse{}, nil
}

func (printer) Verify(context.Context, *verify.Request) (*verify.Verdict, error) {
	fmt.Println(StdoutMarker)
	return &verify.Verdict{Allow: true, Reason: "printed"}, nil
}

func main() { sdk.Serve(printer{}) }
