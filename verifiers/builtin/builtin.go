// Package builtin assembles the registry of verifiers that ship inside the
// tlspin binary.
package builtin

import (
	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/verifiers"
	"github.com/tlspin/tlspin/verifiers/allowlist"
	"github.com/tlspin/tlspin/verifiers/ca"
	"github.com/tlspin/tlspin/verifiers/md5pin"
	"github.com/tlspin/tlspin/verifiers/sha256pin"
	"github.com/tlspin/tlspin/verifiers/spkipin"
	"github.com/tlspin/tlspin/verifiers/tofu"
)

// New returns a registry of every built-in verifier, logging to log.
func New(log hclog.Logger) *verifiers.Registry {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	r := &verifiers.Registry{}
	must(r.Register(md5pin.Name, func() verify.Verifier { return md5pin.New(log) }))
	must(r.Register(sha256pin.Name, func() verify.Verifier { return sha256pin.New(log) }))
	must(r.Register(spkipin.Name, func() verify.Verifier { return spkipin.New(log) }))
	must(r.Register(allowlist.Name, func() verify.Verifier { return allowlist.New(log) }))
	must(r.Register(tofu.Name, func() verify.Verifier { return tofu.New(log) }))
	must(r.Register(ca.Name, func() verify.Verifier { return ca.New(log) }))
	return r
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
