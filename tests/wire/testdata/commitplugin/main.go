// Command commitplugin is a verifier written with the Go SDK that
// implements verify.Committer, as a TOFU verifier would: Verify allows a
// peer with Commit set and records nothing; Commit decides again and, if
// it still allows, appends the server name to the file given as option
// "file".
package main

import (
	"context"
	"errors"
	"os"

	"github.com/tlspin/tlspin/core/sdk"
	"github.com/tlspin/tlspin/core/verify"
)

type firstUse struct{ file string }

var _ verify.Committer = (*firstUse)(nil)

func (*firstUse) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{Name: "firstuse", Version: "1", Summary: "record a new peer once its handshake succeeded",
		Options: []verify.Option{{Name: "file", Description: "where peers are recorded", Required: true}}}, nil
}

func (v *firstUse) Configure(ctx context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	o := sdk.ReadOptions(ctx, v, req)
	v.file = o.String("file", "")
	return &verify.ConfigureResponse{}, o.Err()
}

func decide(req *verify.Request) *verify.Verdict {
	if _, err := sdk.Leaf(req); err != nil {
		return sdk.Rejectf("%v", err)
	}
	return &verify.Verdict{Allow: true, Reason: "first use of " + req.ServerName, Commit: true}
}

func (*firstUse) Verify(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
	return decide(req), nil
}

func (v *firstUse) Commit(_ context.Context, req *verify.Request) (*verify.CommitResponse, error) {
	if !decide(req).Allow {
		return nil, errors.New("would not allow this peer now")
	}
	f, err := os.OpenFile(v.file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(req.ServerName + "\n")
	return &verify.CommitResponse{}, errors.Join(err, f.Close())
}

func main() { sdk.Serve(&firstUse{}) }
