// Package sha256pin accepts a peer whose certificate's DER has one of the
// configured SHA-256 fingerprints. Such a pin changes with every renewal,
// even with the same key; spkipin survives renewal.
package sha256pin

import (
	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/verifiers/pinverifier"
)

// Name is the verifier's registered name.
const Name = "sha256pin"

// New returns an unconfigured sha256pin verifier logging to log (nil: nowhere).
func New(log hclog.Logger) *pinverifier.Verifier {
	return pinverifier.New(pinverifier.Info{
		Name:    Name,
		Version: "1",
		Summary: "accept a peer whose certificate SHA-256 fingerprint matches a pin (changes on every renewal)",
		Algo:    pin.SHA256,
		PinHelp: "SHA-256 of the certificate: 64 hex digits, any case, colons optional, base64, or openssl's whole 'sha256 Fingerprint=...' line",
		Logger:  log,
	})
}
