package nodeverifier_test

import (
	"strings"
	"testing"

	"github.com/tlspin/tlspin/internal/checkrun"
)

// TestVerifiersCheck runs `tlspin --plugin-dir . verifiers check` on the
// example, as its README says: it passes every item, bad values included.
// cn=localhost and the issuer of the checker's reference certificate make
// the scenarios allow what a CN pin allows. configure-repeated does not
// apply: both options are repeatable.
func TestVerifiersCheck(t *testing.T) {
	needNode(t)
	rep := checkrun.Pass(t, ".", map[string]string{"configure-repeated": "declares no option that is not repeatable"},
		"--plugin-dir", ".", "--opt", "cn=localhost", "--opt", "issuer-cn=tlspin compare intermediate CA",
		"--bad", "cn= localhost", "--bad", "issuer-cn=x=y", "cnpin")
	if r, _ := rep.Result("verify-scenarios"); !strings.Contains(r.Detail, "same allow") || !strings.Contains(r.Detail, "other-ca reject") {
		t.Errorf("verify-scenarios: %s; want the reference allowed and another CA's certificate rejected", r.Detail)
	}
}
