// Command tlspin-verifier-sanexpiry is a custom tlspin verifier: it accepts
// a peer whose leaf certificate has a DNS name matching a glob and expires
// within max-days days (short-lived certificates only). See README.md.
package main

import (
	"context"
	"path"
	"strings"
	"time"

	"github.com/tlspin/tlspin/core/sdk"
	"github.com/tlspin/tlspin/core/verify"
)

func main() { sdk.Serve(&sanExpiry{}) }

// sanExpiry is configured once by the host, then asked about every peer.
type sanExpiry struct {
	glob    string
	maxLeft time.Duration
}

func (*sanExpiry) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{Name: "sanexpiry", Version: "1", Summary: "accept a leaf whose DNS name matches a glob and that expires within max-days",
		Options: []verify.Option{{Name: "san", Description: "glob a DNS name of the leaf must match; * stays within one label: *.example.com", Required: true},
			{Name: "max-days", Description: "reject a leaf that expires more than this many days from now (default 90)"}}}, nil
}

func (v *sanExpiry) Configure(ctx context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	o := sdk.ReadOptions(ctx, v, req)
	o.Check("san", func(s string) error { _, err := path.Match(s, ""); return err })
	v.glob, v.maxLeft = o.String("san", ""), time.Duration(o.Int("max-days", 90))*24*time.Hour
	return &verify.ConfigureResponse{}, o.Err()
}

func (v *sanExpiry) Verify(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
	c, err := sdk.Leaf(req)
	if err != nil {
		return nil, err
	}
	left, dots := time.Until(c.NotAfter), strings.NewReplacer(".", "/") // so that * stays within one DNS label
	for _, n := range c.DNSNames {
		if ok, _ := path.Match(dots.Replace(v.glob), dots.Replace(n)); ok && left > 0 && left <= v.maxLeft {
			return &verify.Verdict{Allow: true, Reason: "DNS name " + n + " matches " + v.glob + ", expires in " + left.Round(time.Hour).String(), Matched: v.glob}, nil
		}
	}
	return sdk.Rejectf("leaf %q expires in %s; wanted a DNS name matching %q and expiry within %s", c.DNSNames, left.Round(time.Hour), v.glob, v.maxLeft), nil
}
