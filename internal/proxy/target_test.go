package proxy_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/internal/proxy"
)

// TestNewChecksTarget: a --target that can never be dialled is refused
// when the proxy is made, naming what is wrong, not at every connection
// ("dial tcp 127.0.0.1:0: connection refused") of a proxy that started.
func TestNewChecksTarget(t *testing.T) {
	tests := []struct {
		target string
		says   string // "" when the target is good
	}{
		{"127.0.0.1:8080", ""},
		{"localhost:https", ""},
		{"[::1]:443", ""},
		{"unix:/run/app.sock", ""},
		{"nohost", "want HOST:PORT or unix:/path"},
		{"unix:", "want unix:/path"},
		{"127.0.0.1:", `port "": want 1 to 65535 or a service name`},
		{"127.0.0.1:0", `port "0": want 1 to 65535 or a service name`},
		{"localhost:99999", `port "99999": want 1 to 65535 or a service name`},
		{"localhost:-1", `port "-1"`},
		{"localhost:nosuchservice", `port "nosuchservice"`},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			_, err := proxy.New(proxy.Config{Mode: proxy.ServerMode, TLS: &tls.Config{}, Target: tt.target})
			switch {
			case tt.says == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.says != "" && err == nil:
				t.Errorf("accepted; want an error saying %q", tt.says)
			case tt.says != "" && !strings.Contains(err.Error(), `proxy: target "`+tt.target+`"`) || err != nil && !strings.Contains(err.Error(), tt.says):
				t.Errorf("err = %v; want proxy: target %q: ...%s", err, tt.target, tt.says)
			}
		})
	}
}
