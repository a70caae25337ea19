// Package builtin assembles the registry of verifiers that ship inside the
// tlspin binary.
package builtin

import (
	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/verifiers"
	"github.com/tlspin/tlspin/verifiers/md5pin"
)

// New returns a registry of every built-in verifier, logging to log.
func New(log hclog.Logger) *verifiers.Registry {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	r := &verifiers.Registry{}
	must(r.Register(md5pin.Name, func() verify.Verifier { return md5pin.New(log) }))
	return r
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
