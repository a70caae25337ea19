package tlspin_test

import (
	"context"
	"crypto/tls"
	"testing"

	"github.com/tlspin/tlspin"
)

// TestNilOptionValues: an option given nil (a service passing on its own
// optional logger or environment) means the default, as documented,
// rather than a panic inside Start: WithLogger(nil) logs as without the
// option, WithGetenv(nil) reads os.Getenv, and a nil Option (one chosen
// conditionally and left unset) is no option.
func TestNilOptionValues(t *testing.T) {
	srv := newIdentity("server")
	addr := tlsServer(t, srv)
	tests := []struct {
		name string
		opt  tlspin.Option
	}{
		{"WithLogger(nil)", tlspin.WithLogger(nil)},
		{"WithGetenv(nil)", tlspin.WithGetenv(nil)},
		{"a nil Option", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v *tlspin.Verifiers
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("StartWith panicked: %v", r)
					}
				}()
				var err error
				v, err = tlspin.StartWith(context.Background(), []string{"sha256pin:pin=" + srv.sha}, tt.opt)
				if err != nil {
					t.Fatal(err)
				}
			}()
			defer v.Close()
			c, err := tls.Dial("tcp", addr, v.ClientConfig("localhost"))
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		})
	}
}
