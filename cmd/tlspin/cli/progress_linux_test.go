package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tlspin/tlspin/internal/testbin"
)

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestCompareProgress: compare shows progress on stderr when stderr is a
// terminal, none when it is not, and stdout stays the bare document.
func TestCompareProgress(t *testing.T) {
	args := []string{"--log-level", "error", "compare", "--json", "--verifier", "md5pin", "--samples", "5"}
	runWith := func(stderr *os.File) (stdout string) {
		var out bytes.Buffer
		cmd := exec.Command(testbin.Tlspin(t), args...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		cmd.Stdout, cmd.Stderr = &out, stderr
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatalf("stdout is not the JSON document: %v\n%q", err, out.String())
		}
		return out.String()
	}

	m, s := openPTY(t)
	defer m.Close()
	seen := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(m) // ends with EIO once every slave is closed
		seen <- string(b)
	}()
	runWith(s)
	s.Close()
	if got := <-seen; !strings.Contains(got, "tlspin: compare: [1/1] comparing md5pin") {
		t.Errorf("no progress on a terminal; it showed %q", got)
	}

	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runWith(f)
	if b, _ := os.ReadFile(f.Name()); bytes.Contains(b, []byte("comparing")) || bytes.Contains(b, []byte("\r")) {
		t.Errorf("progress written to a file: %q", b)
	}
}
