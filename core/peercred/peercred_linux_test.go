package peercred_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tlspin/tlspin/core/peercred"
	"github.com/tlspin/tlspin/internal/testbin"
)

// checkHost is the host's check of the socket conn is connected to.
func checkHost(conn net.Conn, pluginPID int) error {
	c, err := peercred.Of(conn)
	if err != nil {
		return err
	}
	return peercred.CheckHost(c, pluginPID)
}

// nobody is the uid and gid of another local user.
const nobody = 65534

// listenAs starts python3 listening on a unix socket at path as uid (nil:
// as ourselves), and returns its process once the socket is up.
func listenAs(t *testing.T, path string, cred *syscall.Credential) *exec.Cmd {
	t.Helper()
	// The system's python3 (Debian's python3, which .ci/run installs):
	// one under root's home is out of another user's reach.
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("no /usr/bin/python3:", err)
	}
	cmd := exec.Command(py, "-c", `import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen()
print("ready", flush=True)
c, _ = s.accept()
c.recv(1)
`, path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Stderr = os.Stderr
	if line := testbin.StartLine(t, cmd); strings.TrimSpace(line) != "ready" {
		t.Fatalf("listener did not start: %q", line)
	}
	return cmd
}

// openDir is a directory every user may write to.
func openDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "peercred-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	return d
}

// privateDir is a directory of mode 0700.
func privateDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestHostRefusesImpostors: a socket served by anyone but the plugin the
// host started (its pid or process group), as another user or as the
// host's own, is refused before a byte is sent.
func TestHostRefusesImpostors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	plugin := exec.Command("sleep", "60")
	plugin.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := plugin.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plugin.Process.Kill(); plugin.Wait() })
	for _, tc := range []struct {
		name string
		cred *syscall.Credential
		dir  string
		want string
	}{
		{"another user", &syscall.Credential{Uid: nobody, Gid: nobody}, openDir(t), "runs as uid 65534"},
		{"another process of the host's user", nil, privateDir(t), "not by the plugin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(tc.dir, "plugin.sock")
			listenAs(t, sock, tc.cred)
			conn, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			err = checkHost(conn, plugin.Process.Pid)
			if !errors.Is(err, peercred.ErrPeer) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("handshake with %s: %v; want peercred.ErrPeer saying %q", tc.name, err, tc.want)
			}
		})
	}
	// The plugin itself passes, unless its socket is where others can
	// reach it.
	for _, tc := range []struct {
		name, dir, want string
	}{
		{"the plugin itself", privateDir(t), ""},
		{"the plugin in an open directory", openDir(t), "other users can reach the socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(tc.dir, "plugin.sock")
			l := listenAs(t, sock, nil)
			conn, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			err = checkHost(conn, l.Process.Pid)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("handshake with the plugin's own socket: %v", err)
			case tc.want != "" && (!errors.Is(err, peercred.ErrPeer) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("handshake: %v; want peercred.ErrPeer saying %q", err, tc.want)
			}
		})
	}
}

// TestPluginRefusesNonAncestors: the kernel names both ends of a socket
// pair as this process, which is neither its own parent nor an ancestor,
// so a plugin refuses it; a connection that is not a unix socket has no
// peer to name.
func TestPluginRefusesNonAncestors(t *testing.T) {
	sock := filepath.Join(privateDir(t), "plugin.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := peercred.Of(conn)
	if err != nil {
		t.Fatal(err)
	}
	if c.PID != os.Getpid() || c.UID != os.Geteuid() || c.Path != sock {
		t.Fatalf("Of = %+v; want pid %d, uid %d, path %s", c, os.Getpid(), os.Geteuid(), sock)
	}
	if err := peercred.CheckPlugin(c); !errors.Is(err, peercred.ErrPeer) || !strings.Contains(err.Error(), "not the host") {
		t.Fatalf("CheckPlugin(ourselves) = %v; want ErrPeer saying 'not the host'", err)
	}
	if err := peercred.CheckHost(c, os.Getpid()); err != nil {
		t.Fatalf("CheckHost(ourselves, our pid) = %v", err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := peercred.Of(a); !errors.Is(err, peercred.ErrPeer) {
		t.Fatalf("Of(pipe) = %v; want ErrPeer", err)
	}
}
