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

// TestBenchProgress: bench counts its steps as it takes them, one per
// launch, the handshakes, one Verify latency per mode and the one-shots
// when there are any, and ends on the last of them.
func TestBenchProgress(t *testing.T) {
	for _, tt := range []struct {
		oneshots string
		total    int
		last     string
	}{
		{"0", 2 + 1 + 4, "Verify latency"},
		{"1", 2 + 1 + 4 + 1, "one-shot commands"},
	} {
		t.Run("oneshots "+tt.oneshots, func(t *testing.T) {
			m, s := openPTY(t)
			defer m.Close()
			seen := make(chan string, 1)
			go func() {
				b, _ := io.ReadAll(m)
				seen <- string(b)
			}()
			cmd := exec.Command(testbin.Tlspin(t), "--log-level", "error", "bench", "--json", "--duration", "40ms", "--launches", "2", "--samples", "3", "--oneshots", tt.oneshots)
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			cmd.Stdout, cmd.Stderr = io.Discard, s
			err := cmd.Run()
			s.Close()
			got := <-seen
			if err != nil {
				t.Fatalf("%v: %q", err, got)
			}
			for i := 1; i <= tt.total; i++ {
				if !strings.Contains(got, fmt.Sprintf("[%d/%d] ", i, tt.total)) {
					t.Errorf("no step %d of %d in %q", i, tt.total, got)
				}
			}
			if want := fmt.Sprintf("[%d/%d] %s", tt.total, tt.total, tt.last); !strings.Contains(got, want) {
				t.Errorf("the last step is not %q: %q", want, got)
			}
			if strings.Contains(got, fmt.Sprintf("/%d] ", tt.total+1)) {
				t.Errorf("steps counted out of %d, one more than taken: %q", tt.total+1, got)
			}
		})
	}
}
