package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/core/sdk/sdktest"
	"github.com/tlspin/tlspin/core/verify"
)

func TestSANExpiry(t *testing.T) {
	c := sdktest.Start(t, &sanExpiry{}, verify.Options{"san": {"*.example.com"}, "max-days": {"30"}})
	short := sdktest.SelfSigned(t, certs.Template{SANs: []string{"api.example.com"}, Days: 7})
	tests := []struct {
		name   string
		cert   *sdktest.Cert
		allow  bool
		reason string
	}{
		{"matching name, short-lived", short, true, "api.example.com matches"},
		{"renewed for 20 days", short.Renewed(t, 20), true, "matches"},
		{"renewed for a year", short.Renewed(t, 365), false, "expires in 8760h0m0s; wanted a DNS name matching \"*.example.com\" and expiry within 720h0m0s"},
		{"expired", sdktest.SelfSigned(t, certs.Template{SANs: []string{"api.example.com"}, NotBefore: time.Now().AddDate(0, 0, -10), Days: 7}), false, "expires in -72h"},
		{"other domain", sdktest.SelfSigned(t, certs.Template{SANs: []string{"api.example.org"}, Days: 7}), false, `"api.example.org"`},
		{"glob does not cross dots", sdktest.SelfSigned(t, certs.Template{SANs: []string{"a.b.example.com"}, Days: 7}), false, `["a.b.example.com"]`},
		{"IP address only", sdktest.SelfSigned(t, certs.Template{SANs: []string{"192.0.2.1"}, Days: 7}), false, "[]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := c.Check(t, tc.cert)
			if v.Allow != tc.allow || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("verdict allow=%v reason %q; want allow=%v, reason containing %q", v.Allow, v.Reason, tc.allow, tc.reason)
			}
		})
	}
}

func TestSANExpiryBadOptions(t *testing.T) {
	tests := []struct {
		name   string
		opts   verify.Options
		quoted string
	}{
		{"san missing", verify.Options{}, `"san"`},
		{"bad glob", verify.Options{"san": {"[x"}}, `"[x"`},
		{"days not a number", verify.Options{"san": {"*"}, "max-days": {"soon"}}, `"soon"`},
		{"unknown option", verify.Options{"san": {"*"}, "maxdays": {"3"}}, `"maxdays"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := sdktest.Serve(t, &sanExpiry{})
			_, err := c.Configure(context.Background(), &verify.ConfigureRequest{Options: tc.opts})
			if !errors.Is(err, verify.ErrBadOption) || !strings.Contains(err.Error(), tc.quoted) {
				t.Fatalf("Configure(%v) = %v; want a bad-option error quoting %s", tc.opts, err, tc.quoted)
			}
		})
	}
}
