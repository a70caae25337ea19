package client_test

import (
	"testing"

	"github.com/tlspin/tlspin/internal/client"
)

func TestServerName(t *testing.T) {
	tests := []struct{ addr, override, want string }{
		{"example.com:443", "", "example.com"},
		{"example.com:443", "other.test", "other.test"},
		{"127.0.0.1:8081", "", ""},
		{"[::1]:8081", "", ""},
		{"[::1]:8081", "localhost", "localhost"},
		{"not-an-address", "", ""},
		// A unix socket's path has no host name: not "unix".
		{"unix:/run/app.sock", "", ""},
		{"unix:app.sock", "", ""},
		{"unix:/run/app.sock", "app.internal", "app.internal"},
	}
	for _, tc := range tests {
		if got := client.ServerName(tc.addr, tc.override); got != tc.want {
			t.Errorf("ServerName(%q, %q) = %q, want %q", tc.addr, tc.override, got, tc.want)
		}
	}
}
