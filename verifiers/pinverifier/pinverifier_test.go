package pinverifier_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/verifiers/internal/vtest"
	"github.com/tlspin/tlspin/verifiers/pinverifier"
	"github.com/tlspin/tlspin/verifiers/sha256pin"
	"github.com/tlspin/tlspin/verifiers/spkipin"
)

var _ verify.Verifier = (*pinverifier.Verifier)(nil)

func TestParseChainAndCandidates(t *testing.T) {
	chain := [][]byte{{1}, {2}, {3}}
	tests := []struct {
		in   string
		want int // candidates
		err  bool
	}{
		{"leaf", 1, false}, {"LEAF", 1, false}, {" any ", 3, false}, {"ca", 2, false}, {"root", 0, true}, {"", 0, true},
	}
	for _, tt := range tests {
		c, err := pinverifier.ParseChain(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("ParseChain(%q) err = %v", tt.in, err)
			continue
		}
		if err == nil && len(pinverifier.Candidates(c, chain)) != tt.want {
			t.Errorf("Candidates(%s) = %d certificates, want %d", c, len(pinverifier.Candidates(c, chain)), tt.want)
		}
	}
	for _, c := range []pinverifier.Chain{pinverifier.ChainLeaf, pinverifier.ChainAny, pinverifier.ChainCA} {
		if got := pinverifier.Candidates(c, nil); len(got) != 0 {
			t.Errorf("Candidates(%s, nil) = %v", c, got)
		}
	}
}

func TestExpiryBoundary(t *testing.T) {
	c := vtest.New(t, vtest.Spec{CN: "x"})
	tests := []struct {
		now      time.Time
		allow    bool
		cacheFor time.Duration
	}{
		{time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), true, pinverifier.CacheFor},
		// A verdict is never cached past the expiry of the pin set.
		{time.Date(2030, 1, 31, 23, 59, 59, 0, time.UTC), true, time.Second},
		{time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC), false, 0},
	}
	for _, tt := range tests {
		now := tt.now
		v := pinverifier.New(pinverifier.Info{Name: "t", Algo: pin.SHA256, Now: func() time.Time { return now }})
		_, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: verify.Options{
			"pin": {c.Pin(t, pin.SHA256, pin.FormatHex)}, "expires": {"2030-01-31"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		verdict := vtest.Verify(t, v, &verify.Request{PeerChain: vtest.Chain(c)})
		if verdict.Allow != tt.allow {
			t.Errorf("at %s: allow = %v (%s), want %v", now, verdict.Allow, verdict.Reason, tt.allow)
		}
		if verdict.CacheFor != tt.cacheFor {
			t.Errorf("at %s: cache for %s, want %s", now, verdict.CacheFor, tt.cacheFor)
		}
		if !verdict.Allow && !strings.Contains(verdict.Reason, "failing closed") {
			t.Errorf("expiry reason %q does not say it fails closed", verdict.Reason)
		}
	}
}

func TestConfigureInProcess(t *testing.T) {
	c := vtest.New(t, vtest.Spec{CN: "x"})
	tests := []struct {
		v     *pinverifier.Verifier
		opts  verify.Options
		chain bool
		err   string
	}{
		{spkipin.New(nil), verify.Options{"pin": {c.Pin(t, pin.SPKI, pin.FormatCurl)}}, false, ""},
		{spkipin.New(nil), verify.Options{"pin": {c.Pin(t, pin.SPKI, pin.FormatCurl)}, "chain": {"any"}}, true, ""},
		{sha256pin.New(nil), verify.Options{"pin": {c.Pin(t, pin.SPKI, pin.FormatCurl)}}, false, `option pin="sha256//`},
		{sha256pin.New(nil), verify.Options{"pin": {"a", "b"}, "chain": {"ca", "any"}}, false, `option chain="ca,any": given more than once`},
	}
	for _, tt := range tests {
		r, err := tt.v.Configure(context.Background(), &verify.ConfigureRequest{Options: tt.opts})
		if tt.err != "" {
			if !errors.Is(err, verify.ErrBadOption) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Configure(%v) err = %v, want %q", tt.opts, err, tt.err)
			}
			continue
		}
		if err != nil || r.NeedsChain != tt.chain {
			t.Errorf("Configure(%v) = %+v, %v; want NeedsChain %v", tt.opts, r, err, tt.chain)
		}
	}
}

// Configure warns, once and without repeating the verifier's name (the
// host names each plugin's logger after it), of a collision-broken
// digest and of an expired pin set; a sound, current one is silent.
func TestConfigureWarnings(t *testing.T) {
	good := func(a pin.Algo) string { return strings.Repeat("ab", a.Size()) }
	tests := []struct {
		name    string
		algo    pin.Algo
		expires string
		want    []string // warnings, in order
	}{
		{"md5", pin.MD5, "", []string{"MD5 pins are weak: MD5 is collision-broken; prefer sha256pin, or spkipin which also survives renewal"}},
		{"sha1", pin.SHA1, "", []string{"SHA1 pins are weak: SHA1 is collision-broken"}},
		{"sha256", pin.SHA256, "", nil},
		{"spki", pin.SPKI, "", nil},
		{"sha256, expired", pin.SHA256, "2020-01-01", []string{"pin set expired on 2020-01-01: every peer will be rejected until the pins are renewed"}},
		{"md5, expired", pin.MD5, "2020-01-01", []string{"pin set expired on 2020-01-01", "MD5 pins are weak"}},
		{"sha256, current", pin.SHA256, "2999-01-01", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs strings.Builder
			name := string(tt.algo) + "pin"
			v := pinverifier.New(pinverifier.Info{Name: name, Algo: tt.algo,
				Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})})
			opts := verify.Options{"pin": {good(tt.algo)}}
			if tt.expires != "" {
				opts["expires"] = []string{tt.expires}
			}
			if _, err := v.Configure(context.Background(), &verify.ConfigureRequest{Options: opts}); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if logs.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(tt.want) {
				t.Fatalf("logged %q; want %d warnings", logs.String(), len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], "[WARN]") || !strings.Contains(lines[i], w) || strings.Contains(lines[i], name) {
					t.Errorf("warning %d is %q; want a warning saying %q, without %q", i, lines[i], w, name)
				}
			}
		})
	}
}

// CheckValues refuses what Configure refuses and accepts what it accepts,
// and keeps and logs nothing: a host calls it before it connects.
func TestCheckValues(t *testing.T) {
	good := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		opts verify.Options
		says string // "" when the options are good
	}{
		{"a pin", verify.Options{"pin": {good}}, ""},
		{"pins, chain and expiry", verify.Options{"pin": {good, "sha256:" + strings.Repeat("cd", 32)}, "chain": {"ca"}, "expires": {"2020-01-01"}}, ""},
		{"missing pin", verify.Options{}, `option "pin"`},
		{"malformed pin", verify.Options{"pin": {"xyz"}}, `option pin="xyz"`},
		{"a good pin and a bad one", verify.Options{"pin": {good, "00"}}, `option pin="00"`},
		{"bad chain", verify.Options{"pin": {good}, "chain": {"root"}}, `option chain="root"`},
		{"bad expiry", verify.Options{"pin": {good}, "expires": {"soon"}}, `option expires="soon"`},
		{"expiry that ends at the zero time", verify.Options{"pin": {good}, "expires": {"0000-12-31"}}, `option expires="0000-12-31": date "0000-12-31" is out of range`},
		{"unknown option", verify.Options{"pin": {good}, "pins": {good}}, `option "pins"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs strings.Builder
			v := pinverifier.New(pinverifier.Info{Name: "sha256pin", Algo: pin.SHA256,
				Logger: hclog.New(&hclog.LoggerOptions{Output: &logs})})
			checked := v.CheckValues(tt.opts)
			_, configured := v.Configure(context.Background(), &verify.ConfigureRequest{Options: tt.opts})
			switch {
			case tt.says == "" && (checked != nil || configured != nil):
				t.Fatalf("CheckValues = %v, Configure = %v; want both nil", checked, configured)
			case tt.says != "" && (checked == nil || !errors.Is(checked, verify.ErrBadOption) || !strings.Contains(checked.Error(), tt.says)):
				t.Fatalf("CheckValues = %v; want a bad option saying %q", checked, tt.says)
			case tt.says != "" && (configured == nil || configured.Error() != checked.Error()):
				t.Fatalf("Configure = %v; want what CheckValues said, %v", configured, checked)
			}
		})
	}
	// Nothing kept, nothing logged: an expired pin set (Configure warns)
	// checked on a fresh verifier leaves it unconfigured and silent.
	var logs strings.Builder
	v := pinverifier.New(pinverifier.Info{Name: "sha256pin", Algo: pin.SHA256, Logger: hclog.New(&hclog.LoggerOptions{Output: &logs})})
	if err := v.CheckValues(verify.Options{"pin": {good}, "expires": {"2020-01-01"}}); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Errorf("CheckValues logged %q", logs.String())
	}
	verdict, err := v.Verify(context.Background(), &verify.Request{PeerChain: [][]byte{[]byte("leaf")}})
	if err != nil || verdict.Allow || strings.Contains(verdict.Reason, "expired") {
		t.Errorf("after CheckValues, Verify = %+v, %v; want the unconfigured verifier's rejection, not the checked options'", verdict, err)
	}
}

// TestParseExpiry: a pin set expires at the start of the day after the
// date. 0000-12-31 ended at the zero time, which callers take for "never
// expires": the pins never expired.
func TestParseExpiry(t *testing.T) {
	for _, tt := range []struct {
		in, want, err string
	}{
		{"2030-01-31", "2030-02-01", ""},
		{" 2030-12-31 ", "2031-01-01", ""},
		{"1970-01-01", "1970-01-02", ""},
		{"9999-12-31", "10000-01-01", ""},
		{"0000-12-31", "", `date "0000-12-31" is out of range`},
		{"0000-01-01", "", `date "0000-01-01" is out of range`},
		{"0001-01-01", "", `date "0001-01-01" is out of range`},
		{"1969-12-31", "", `date "1969-12-31" is out of range`},
		{"2030-13-01", "", "want a date as YYYY-MM-DD"},
		{"soon", "", "want a date as YYYY-MM-DD"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := pinverifier.ParseExpiry(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseExpiry(%q) = %v, %v; want an error saying %q", tt.in, got, err, tt.err)
				}
				if !got.IsZero() {
					t.Fatalf("ParseExpiry(%q) = %v with its error; want the zero time", tt.in, got)
				}
				return
			}
			if err != nil || got.IsZero() || got.Format(time.DateOnly) != tt.want || got.Location() != time.UTC {
				t.Fatalf("ParseExpiry(%q) = %v, %v; want %s UTC", tt.in, got, err, tt.want)
			}
		})
	}
}
