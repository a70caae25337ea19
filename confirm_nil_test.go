package tlspin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tlspin/tlspin"
)

// TestConfirmNil: Confirm given no connection refuses it, as the confirm
// function of ClientConfigForAddr does, with an error matching
// ErrBadArgument that says what to pass. It used to panic.
func TestConfirmNil(t *testing.T) {
	v := start(t, []string{"spkipin:pin=" + newIdentity("client").spki})
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Confirm(ctx, nil) panicked: %v", r)
			}
		}()
		err = v.Confirm(context.Background(), nil)
	}()
	if !errors.Is(err, tlspin.ErrBadArgument) {
		t.Fatalf("Confirm(ctx, nil) = %v, want an error matching ErrBadArgument", err)
	}
	if !strings.Contains(err.Error(), "tls.Server") {
		t.Errorf("Confirm(ctx, nil) = %q, want it to say what to pass (the connection of tls.Server)", err)
	}
}
