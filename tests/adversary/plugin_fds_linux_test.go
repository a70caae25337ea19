package adversary

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tlspin/tlspin/internal/e2e"
	"github.com/tlspin/tlspin/internal/testbin"
)

// TestPluginInheritsNoDescriptorOfTheHost: a descriptor tlspin inherited
// from its parent without close-on-exec (a script's `3<`, a supervisor's
// pipe, a shell's process substitution) was passed on to every plugin,
// which Go's exec does not close: a hostile plugin read the pipe that
// tlspin's parent meant for tlspin. tlspin now marks every descriptor it
// inherited beyond stderr close-on-exec as it starts.
func TestPluginInheritsNoDescriptorOfTheHost(t *testing.T) {
	e2e.NeedOpenSSL(t)
	dir := t.TempDir()
	srv := e2e.NewIdentity(t, dir, "server")
	addr, _ := e2e.StartSServer(t, "-cert", srv.File, "-key", srv.File)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(r.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	const secret = "SECRET meant for tlspin"
	_, err = w.Write([]byte(secret))
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	stole := filepath.Join(dir, "stolen")
	cmd := exec.Command(testbin.Tlspin(t), "send", "--no-reply", "--plugin-dir", evilDir(t),
		"--verifier", "evil", "--opt", "mode=fds", "--opt", "out="+stole, "--opt", fmt.Sprintf("pipe=pipe:[%d]", st.Ino), addr)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	cmd.Stdin = strings.NewReader("hello\n")
	cmd.ExtraFiles = []*os.File{r} // tlspin's descriptor 3
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	got := stolen(t, cmd, done, &stderr, stole)
	if string(got) != "none" {
		t.Fatalf("ATTACK: the plugin inherited tlspin's descriptor 3 and read it: %q", got)
	}
}
