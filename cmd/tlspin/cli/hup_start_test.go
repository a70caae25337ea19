package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestSIGHUPWhileVerifiersStart: SIGHUP (a reload) that comes while the
// verifier plugins are starting killed serve and proxy with SIGHUP's
// default action (exit 129), since its handler was installed only once
// they had started. It is a reload, done once they have.
func TestSIGHUPWhileVerifiersStart(t *testing.T) {
	dir := t.TempDir()
	certFile, pin := identityFile(t, dir, "server")
	plugins := filepath.Join(dir, "plugins")
	if err := os.Mkdir(plugins, 0o700); err != nil {
		t.Fatal(err)
	}
	started, goOn := filepath.Join(dir, "started"), filepath.Join(dir, "go")
	// spkipin, which starts only once the test says so, and says when it
	// was started (bounded: 600 tries of 0.05 s).
	script := "#!/bin/sh\ntouch '" + started + "'\ni=0\nwhile [ ! -e '" + goOn + "' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\nexec '" + testbin.Tlspin(t) + "' __verifier spkipin\n"
	if err := os.WriteFile(filepath.Join(plugins, "tlspin-verifier-slow"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", plugins+string(os.PathListSeparator)+os.Getenv("PATH")) // StartTlspin passes on PATH only
	tests := []struct {
		name string
		args []string
	}{
		{"serve", []string{"serve", "--listen", "127.0.0.1:0", "--cert", certFile, "--verifier", "slow:pin=" + pin}},
		{"proxy server", []string{"proxy", "server", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--cert", certFile, "--verifier", "slow:pin=" + pin}},
		{"proxy client", []string{"proxy", "client", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--cert", certFile, "--verifier", "slow:pin=" + pin}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(started)
			os.Remove(goOn)
			p := e2e.StartTlspin(t, nil, append([]string{"--log-level", "info"}, tt.args...)...)
			if !wait.Until(20*time.Second, func() bool { _, err := os.Stat(started); return err == nil }) {
				t.Fatal("the plugin did not start")
			}
			p.Cmd.Process.Signal(syscall.SIGHUP)
			if err := os.WriteFile(goOn, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if !wait.Until(20*time.Second, func() bool {
				select {
				case <-p.Done:
					return true
				default:
				}
				return strings.Contains(p.Stderr.String(), "SIGHUP: certificate reloaded")
			}) {
				t.Fatalf("no reload after the SIGHUP:\n%s", p.Stderr)
			}
			select {
			case <-p.Done:
				t.Fatalf("exited after a SIGHUP while its verifiers started: %v\n%s", p.Err, p.Stderr)
			default:
			}
			p.Cmd.Process.Signal(syscall.SIGTERM)
			if code := p.Wait(t, 20*time.Second); code != 0 {
				t.Errorf("exit %d after SIGTERM, want 0", code)
			}
		})
	}
}
