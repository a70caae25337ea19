// Package md5pin is the recipe's verifier: accept a peer whose certificate's
// DER has one of the configured MD5 fingerprints. MD5 is collision-broken;
// the verifier says so when configured and points to sha256pin and spkipin.
package md5pin

import (
	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/verifiers/pinverifier"
)

// Name is the verifier's registered name.
const Name = "md5pin"

// New returns an unconfigured md5pin verifier logging to log (nil: nowhere).
func New(log hclog.Logger) *pinverifier.Verifier {
	return pinverifier.New(pinverifier.Info{
		Name:    Name,
		Version: "1",
		Summary: "accept a peer whose certificate MD5 fingerprint matches a pin (the recipe's check; MD5 is weak)",
		Algo:    pin.MD5,
		PinHelp: "MD5 of the certificate: 32 hex digits, any case, colons optional, or openssl's whole 'md5 Fingerprint=...' line",
		Logger:  log,
	})
}
