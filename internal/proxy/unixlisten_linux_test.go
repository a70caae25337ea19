package proxy_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/internal/proxy"
	"github.com/tlspin/tlspin/internal/syncbuf"
)

// nobody is the uid and gid of another local user.
const nobody = 65534

// readAsNobody connects to the unix socket sock as uid 65534 and says
// what it read, or why it could not connect.
func readAsNobody(t *testing.T, sock string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	py := "/usr/bin/python3" // out of another user's reach elsewhere (pyenv)
	if _, err := os.Stat(py); err != nil {
		t.Skip("no /usr/bin/python3:", err)
	}
	cmd := exec.Command(py, "-c", `import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect:", e.strerror); sys.exit()
data = b""
try:
    while True:
        b = s.recv(100)
        if not b: break
        data += b
except OSError as e:
    print("recv:", e.strerror)
print("read:", repr(data))
`, sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 as nobody: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// serveSecret accepts on ln and writes a secret to each connection, as a
// proxy client's target would answer whoever holds its client certificate.
func serveSecret(t *testing.T, ln net.Listener) <-chan string {
	remotes := make(chan string, 10)
	serveEach(t, ln, func(c net.Conn) {
		remotes <- c.RemoteAddr().String()
		c.Write([]byte("SECRET for the pinned client\n"))
	})
	return remotes
}

// openDir is a directory every user may enter.
func openDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "proxy-unix-") // t.TempDir's parent is 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestUnixListenerKeepsOtherUsersOut is the attack of another local user
// on proxy client's --listen: on TCP loopback anyone could connect and
// reach the target as the holder of --cert. On a unix socket, another
// uid gets no byte: the socket's mode keeps it out, and should it connect
// anyway (in the moment between bind and chmod; here, the mode opened by
// hand), its peer credentials get it closed unread. The owner gets
// through, and is named by uid.
func TestUnixListenerKeepsOtherUsersOut(t *testing.T) {
	sock := filepath.Join(openDir(t), "proxy.sock")
	logs := &syncbuf.Buffer{}
	ln, err := proxy.ListenUnix(context.Background(), sock, hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Warn}))
	if err != nil {
		t.Fatal(err)
	}
	remotes := serveSecret(t, ln)
	st, err := os.Stat(sock)
	if err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket %s: %v, %v; want a socket of mode 0600", sock, st.Mode(), err)
	}
	if got := readAsNobody(t, sock); got != "connect: Permission denied" {
		t.Errorf("ATTACK: another user connecting to a socket of mode 0600: %s", got)
	}
	// The moment between bind and chmod, held open.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	if got := readAsNobody(t, sock); strings.Contains(got, "SECRET") || !strings.HasPrefix(got, "read: b''") && !strings.HasPrefix(got, "recv:") {
		t.Errorf("ATTACK: another user connecting through an open mode: %s", got)
	}
	if !strings.Contains(logs.String(), "uid 65534") {
		t.Errorf("no warning naming the refused uid:\n%s", logs)
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != "SECRET for the pinned client\n" {
		t.Fatalf("the owner read %q", got)
	}
	if r := <-remotes; !strings.HasPrefix(r, "unix, uid 0, pid ") {
		t.Errorf("remote of the owner's connection: %q, want unix, uid 0, pid N", r)
	}
	ln.Close()
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
}

// TestUnixListenerPath: the socket's path is taken only when nothing is
// there or a stale socket of this user's is (connecting is refused), so
// that --listen never removes a file, nor steals a socket in use.
func TestUnixListenerPath(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		err   string // "" when the path is taken
	}{
		{"nothing there", func(*testing.T, string) {}, ""},
		{"a stale socket", func(t *testing.T, path string) {
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			ln.(*net.UnixListener).SetUnlinkOnClose(false)
			ln.Close()
		}, ""},
		{"a regular file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is not a socket"},
		{"a socket in use", func(t *testing.T, path string) {
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
		}, "in use"},
		{"a stale socket of another user", func(t *testing.T, path string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			ln.(*net.UnixListener).SetUnlinkOnClose(false)
			ln.Close()
			if err := os.Lchown(path, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}, "uid 65534"},
		{"an abstract socket", nil, "abstract"},
		// They could put their socket there, or a link between bind and
		// chmod, which would chmod the file it leads to.
		{"in a directory every user may write", func(t *testing.T, path string) {
			dir := filepath.Dir(path)
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o700) })
		}, "which every user may write to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "proxy.sock")
			if tt.setup == nil {
				path = "@tlspin-test-proxy"
			} else {
				tt.setup(t, path)
			}
			before, _ := os.ReadFile(path)
			ln, err := proxy.ListenUnix(context.Background(), path, nil)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				ln.Close()
				return
			}
			if err == nil {
				ln.Close()
				t.Fatalf("listened on %s", tt.name)
			}
			if !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), path) {
				t.Errorf("err = %v; want it to quote %q and say %q", err, path, tt.err)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Errorf("the file was changed: %q, was %q", after, before)
			}
		})
	}
}
