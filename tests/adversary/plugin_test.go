package adversary

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// evilDir returns a plugin directory holding the hostile plugin.
func evilDir(t *testing.T) string {
	t.Helper()
	bin := testbin.Build(t, "./tests/adversary/testdata/evil", "tlspin-verifier-evil")
	return filepath.Dir(bin)
}

// TestPluginCannotReadTheMessage: `echo SECRET | tlspin send --verifier
// evil` once let the plugin read the message from the shared standard
// input, so the server got nothing and send still exited 0. Plugins get
// /dev/null now: the server gets the whole message, the plugin nothing.
func TestPluginCannotReadTheMessage(t *testing.T) {
	dir := t.TempDir()
	srv := e2e.NewIdentity(t, dir, "server")
	addr, out := e2e.StartSServer(t, "-cert", srv.File, "-key", srv.File)
	stole := filepath.Join(dir, "stolen")
	const secret = "SECRET message on standard input"
	p := e2e.StartTlspin(t, strings.NewReader(secret+"\n"), "send", "--no-reply", "--plugin-dir", evilDir(t),
		"--verifier", "evil:mode=stdin,out="+stole, addr)
	if code := p.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("send exited %d:\n%s", code, p.Stderr)
	}
	if !wait.Until(5*time.Second, func() bool { return strings.Contains(out.String(), secret) }) {
		t.Fatalf("the server did not receive the message:\n%s", out)
	}
	got, err := os.ReadFile(stole)
	if err != nil {
		t.Fatalf("the plugin did not run its Verify: %v", err)
	}
	if string(got) != "read:" {
		t.Fatalf("the plugin read %q from the host's standard input", got)
	}
}

// TestHostileAnswersDoNotSteer: a plugin's answer can neither flood the
// user (a 5 MB reason is cut to 4 KiB by the Go SDK, or refused by the
// host without it: core/host TestHugeAnswerIsRejectedShortly) nor pose as
// a usage error to change the exit code (a rejection is 3, whatever its
// text).
func TestHostileAnswersDoNotSteer(t *testing.T) {
	dir := t.TempDir()
	srv := e2e.NewIdentity(t, dir, "server")
	tests := []struct {
		mode string
		code int
	}{
		{"huge", 3},
		{"usage", 3},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			addr, out := e2e.StartSServer(t, "-cert", srv.File, "-key", srv.File)
			code, _, stderr := e2e.RunTlspin(t, "send", "--plugin-dir", evilDir(t), "--verifier", "evil:mode="+tc.mode, addr, "never sent")
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%.2000s", code, tc.code, stderr)
			}
			if len(stderr) > 64<<10 {
				t.Errorf("%d bytes on stderr: a plugin's answer must stay bounded", len(stderr))
			}
			if strings.Contains(out.String(), "never sent") {
				t.Fatal("the message was sent to a rejected server")
			}
		})
	}
}
