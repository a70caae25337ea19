package adversary

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// TestPluginCannotReadTheHostThroughProc: a plugin's standard input is
// /dev/null and its environment holds four of the host's variables, but
// it runs as the host's user, which the kernel let open the host's
// /proc/PPID/fd/0 and /proc/PPID/environ (and read its memory). So
// `echo SECRET | tlspin send --verifier evil` gave the plugin the message,
// which the server never got, and the whole environment tlspin was
// started with. tlspin now makes itself non-dumpable, which closes its
// /proc files and ptrace to processes without CAP_SYS_PTRACE. Root has
// that capability, so under root tlspin runs as uid 65534 here.
func TestPluginCannotReadTheHostThroughProc(t *testing.T) {
	e2e.NeedOpenSSL(t)
	uid, gid := os.Geteuid(), os.Getegid()
	if uid == 0 {
		uid, gid = 65534, 65534
	}
	// Made here, not by t.TempDir (mode 0700, root's): another uid must
	// run the binaries and trust the plugin directory.
	dir, err := os.MkdirTemp("", "tlspin-proc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	plugins, home := filepath.Join(dir, "plugins"), filepath.Join(dir, "home")
	for _, d := range []string{plugins, home} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	tlspin, evil := filepath.Join(dir, "tlspin"), filepath.Join(plugins, "tlspin-verifier-evil")
	copyFile(t, testbin.TlspinAlone(t), tlspin)
	copyFile(t, filepath.Join(evilDir(t), "tlspin-verifier-evil"), evil)

	srv := e2e.NewIdentity(t, t.TempDir(), "server")
	addr, out := e2e.StartSServer(t, "-cert", srv.File, "-key", srv.File)
	const secret, envSecret = "SECRET message on standard input", "TLSPIN_TEST_TOKEN=hunter2"
	stole := filepath.Join(home, "stolen")
	cmd := exec.Command(tlspin, "send", "--no-reply", "--plugin-dir", plugins, "--verifier", "evil:mode=proc,out="+stole, addr)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, envSecret}
	// The pipe a shell would make, of tlspin's user.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Chown(uid, gid); err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = r
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if uid != os.Geteuid() {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	_, err = w.Write([]byte(secret + "\n"))
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := stolen(t, cmd, done, &stderr, stole)
	t.Logf("the plugin got:\n%s", got)
	if string(got) != "fd/0: refused\nenviron: refused\n" {
		t.Errorf("ATTACK: the plugin read the host's /proc files:\n%s", got)
	}
	if !wait.Until(5*time.Second, func() bool { return strings.Contains(out.String(), secret) }) {
		t.Errorf("the server did not receive the message:\n%s", out)
	}
}

// stolen waits (a minute at most) for cmd, a tlspin send with the evil
// plugin, to succeed, and returns what the plugin wrote to the file stole.
func stolen(t *testing.T, cmd *exec.Cmd, done <-chan error, stderr *bytes.Buffer, stole string) []byte {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("send: %v\n%s", err, stderr)
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("send did not end within a minute:\n%s", stderr)
	}
	got, err := os.ReadFile(stole)
	if err != nil {
		t.Fatalf("the plugin did not run its Verify: %v\n%s", err, stderr)
	}
	return got
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
