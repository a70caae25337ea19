package sdk

import (
	"context"
	"errors"
	"strconv"

	"github.com/tlspin/tlspin/core/verify"
)

// Options reads a verifier's options in Configure. It keeps the first
// error, so that Configure can read every option and check once:
//
//	o := sdk.ReadOptions(ctx, v, req)
//	v.glob = o.String("san", "")
//	v.days = o.Int("max-days", 90)
//	return &verify.ConfigureResponse{}, o.Err()
//
// Every error it reports is a *verify.OptionError that names the option
// and quotes the bad value, as the host requires.
type Options struct {
	opts verify.Options
	err  error
}

// ReadOptions checks req's options against what v's Describe declares
// (verify.CheckOptions: unknown, missing required, repeated) and returns
// a reader for them.
func ReadOptions(ctx context.Context, v verify.Verifier, req *verify.ConfigureRequest) *Options {
	o := &Options{}
	if req != nil {
		o.opts = req.Options
	}
	d, err := v.Describe(ctx)
	if err != nil {
		o.err = err
		return o
	}
	o.err = verify.CheckOptions(d, o.opts)
	return o
}

// Err returns the first error met, or nil.
func (o *Options) Err() error { return o.err }

// Strings returns every value of name, in order.
func (o *Options) Strings(name string) []string { return o.opts[name] }

// String returns the first value of name, or def when it is not given.
func (o *Options) String(name, def string) string {
	if v := o.opts[name]; len(v) > 0 {
		return v[0]
	}
	return def
}

// Int returns name as a whole number ≥ 0, or def when it is not given.
func (o *Options) Int(name string, def int) int {
	s := o.String(name, "")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		o.fail(name, s, errors.New("want a whole number ≥ 0"))
		return def
	}
	return n
}

// Check runs valid on every value of name and records the first error.
func (o *Options) Check(name string, valid func(string) error) {
	for _, s := range o.opts[name] {
		if err := valid(s); err != nil {
			o.fail(name, s, err)
			return
		}
	}
}

func (o *Options) fail(name, value string, err error) {
	if o.err == nil {
		o.err = &verify.OptionError{Option: name, Value: value, Err: err}
	}
}
