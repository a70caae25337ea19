// Package spkipin accepts a peer whose certificate's SubjectPublicKeyInfo
// has one of the configured SHA-256 pins: the pin of the key, which
// survives renewal of the certificate with the same key. It is the pin
// curl (--pinnedpubkey sha256//...), OkHttp (sha256/...), HPKP
// (pin-sha256="...") and ghostunnel (sha256:...) use, and accepts all of
// their spellings.
package spkipin

import (
	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/verifiers/pinverifier"
)

// Name is the verifier's registered name.
const Name = "spkipin"

// New returns an unconfigured spkipin verifier logging to log (nil: nowhere).
func New(log hclog.Logger) *pinverifier.Verifier {
	return pinverifier.New(pinverifier.Info{
		Name:    Name,
		Version: "1",
		Summary: "accept a peer whose public key (SPKI SHA-256) matches a pin; survives renewal with the same key",
		Algo:    pin.SPKI,
		PinHelp: "SHA-256 of the SubjectPublicKeyInfo: base64, hex (colons optional), curl's sha256//BASE64 (several joined by ';'), OkHttp's sha256/BASE64, HPKP's pin-sha256=\"BASE64\" or ghostunnel's sha256:BASE64",
		Logger:  log,
	})
}
