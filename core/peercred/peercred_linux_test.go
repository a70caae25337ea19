package peercred_test

import (
	"errors"
	"fmt"
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

// listenAs starts python3 in dir ("": ours) listening on a unix socket
// at path (@name: an abstract one) as uid (nil: as ourselves), and
// returns its process once the socket is up.
func listenAs(t *testing.T, path string, cred *syscall.Credential, dir string) *exec.Cmd {
	t.Helper()
	// The system's python3 (Debian's python3, which .ci/run installs):
	// one under root's home is out of another user's reach.
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("no /usr/bin/python3:", err)
	}
	cmd := exec.Command(py, "-c", `import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind("\0" + sys.argv[1][1:] if sys.argv[1].startswith("@") else sys.argv[1])
s.listen()
print("ready", flush=True)
c, _ = s.accept()
c.recv(1)
`, path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = dir
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
			listenAs(t, sock, tc.cred, "")
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
			l := listenAs(t, sock, nil, "")
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

// TestHostRefusesSocketsWithoutADirectory is the attack of a plugin whose
// socket has no directory to keep other users off it: an abstract socket
// (@name), which any local user can connect to, or one bound by a relative
// name, which getpeername reports without its directory. The host checked
// the directory of such a name, its own working directory, and passed the
// socket whenever that was private (a home of mode 0700).
func TestHostRefusesSocketsWithoutADirectory(t *testing.T) {
	open := openDir(t)
	t.Chdir(privateDir(t))
	for _, tc := range []struct{ name, bind, dial, dir string }{
		{"abstract", fmt.Sprintf("@tlspin-peercred-test-%d", os.Getpid()), "", ""},
		{"bound by a relative name", "plugin.sock", filepath.Join(open, "plugin.sock"), open},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listenAs(t, tc.bind, nil, tc.dir)
			dial := tc.dial
			if dial == "" {
				dial = tc.bind
			}
			conn, err := net.Dial("unix", dial)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			err = checkHost(conn, l.Process.Pid)
			if !errors.Is(err, peercred.ErrPeer) || !strings.Contains(err.Error(), "not a file named by an absolute path") {
				t.Fatalf("ATTACK: the host accepted %s (%v)", tc.name, err)
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

// TestPluginAcceptsAHostThatIsPID1: tlspin as a container's entrypoint is
// process 1 of its pid namespace, and a plugin's check of its parent gave
// up on reaching pid 1 before comparing it: every plugin refused its own
// host, and every peer was rejected. The test runs itself as pid 1 of a
// new pid namespace (the host), which starts itself again (the plugin)
// with one end of a socket pair.
func TestPluginAcceptsAHostThatIsPID1(t *testing.T) {
	switch os.Getenv("TLSPIN_PID1_ROLE") {
	case "plugin":
		conn, err := net.FileConn(os.NewFile(3, "channel"))
		if err == nil {
			var c peercred.Cred
			if c, err = peercred.Of(conn); err == nil {
				err = peercred.CheckPlugin(c)
			}
		}
		fmt.Printf("plugin: host pid %d: %v\n", os.Getppid(), err)
		return
	case "host":
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		if err != nil {
			fmt.Println(err)
			return
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestPluginAcceptsAHostThatIsPID1$")
		cmd.Env = append(os.Environ(), "TLSPIN_PID1_ROLE=plugin")
		cmd.ExtraFiles = []*os.File{os.NewFile(uintptr(fds[1]), "plugin end")}
		out, err := cmd.CombinedOutput()
		fmt.Printf("host pid %d; %s(%v)\n", os.Getpid(), out, err)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a new pid namespace")
	}
	cmd := exec.Command("unshare", "--pid", "--fork", os.Args[0], "-test.run=^TestPluginAcceptsAHostThatIsPID1$")
	cmd.Env = append(os.Environ(), "TLSPIN_PID1_ROLE=host")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Skipf("cannot make a pid namespace here: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "host pid 1;") || !strings.Contains(string(out), "plugin: host pid 1: <nil>") {
		t.Fatalf("a plugin whose host is pid 1:\n%s", out)
	}
}
