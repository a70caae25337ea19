package host_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/testbin"
)

// listeningSocket returns the path of the unix socket process pid listens
// on, from /proc, or "".
func listeningSocket(t *testing.T, pid int) string {
	t.Helper()
	inodes := map[string]bool{}
	fds, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	for _, fd := range fds {
		l, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd.Name())
		if in, ok := strings.CutPrefix(l, "socket:["); ok {
			inodes[strings.TrimSuffix(in, "]")] = true
		}
	}
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path; St 01 is listening.
		fs := strings.Fields(sc.Text())
		if len(fs) == 8 && fs[5] == "01" && inodes[fs[6]] {
			return fs[7]
		}
	}
	return ""
}

// asNobody runs python3 as uid 65534 with script and args, and returns
// what it printed.
func asNobody(t *testing.T, script string, args ...string) string {
	t.Helper()
	py := "/usr/bin/python3" // out of another user's reach elsewhere (pyenv)
	if _, err := os.Stat(py); err != nil {
		t.Skip("no /usr/bin/python3:", err)
	}
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 as nobody: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// connectAsNobody connects to the gRPC plugin's socket sock as another
// user, sends the start of an HTTP/2 connection and says what happened.
func connectAsNobody(t *testing.T, sock string) string {
	t.Helper()
	return asNobody(t, `import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect:", e.strerror); sys.exit()
try:
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
except (BrokenPipeError, ConnectionResetError):
    print("closed"); sys.exit()  # refused before it could even send
try:
    print("answered" if s.recv(100) else "closed")
except ConnectionResetError:
    print("closed")
except OSError as e:
    print("recv:", e.strerror)
`, sock)
}

// TestChannelClosedToOtherUsers: another local user can neither reach a
// gRPC plugin's socket (its directory is the host's, 0700) nor, if the
// directory were opened to it, get an answer from a plugin built with the
// SDK (which checks that the connecting process is its host). A direct
// plugin's channel has no name to reach: all another user could try is
// the plugin's descriptors through /proc, which the kernel refuses.
func TestChannelClosedToOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	eachChannel(t, testChannelClosedToOtherUsers)
}

func testChannelClosedToOtherUsers(t *testing.T, ch string) {
	cert := newCert(t)
	p := startMD5Over(t, ch, md5hex(cert), discConfig(t))
	if ch == "direct" {
		if sock := listeningSocket(t, p.Pid()); sock != "" {
			t.Fatalf("the direct plugin listens on %s", sock)
		}
		got := asNobody(t, `import os, sys
for path in ("/proc/%s/fd" % sys.argv[1], "/proc/%s/fd/3" % sys.argv[1]):
    try:
        open(path).close() if path.endswith("/3") else os.listdir(path)
        print(path, "open")
    except OSError as e:
        print(path, e.strerror)
`, strconv.Itoa(p.Pid()))
		if want := fmt.Sprintf("/proc/%d/fd Permission denied\n/proc/%d/fd/3 Permission denied", p.Pid(), p.Pid()); got != want {
			t.Fatalf("another user reaching the plugin's descriptors:\n%s\nwant:\n%s", got, want)
		}
	} else {
		sock := listeningSocket(t, p.Pid())
		if sock == "" {
			t.Fatalf("pid %d listens on no unix socket", p.Pid())
		}
		if got := connectAsNobody(t, sock); got != "connect: Permission denied" {
			t.Fatalf("another user connecting to the plugin socket %s: %s; want permission denied", sock, got)
		}
		dir := filepath.Dir(sock)
		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("socket directory %s has mode %v; want 0700", dir, st.Mode().Perm())
		}
		// Open the way: the plugin itself must still refuse.
		if err := os.Chmod(dir, 0o711); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(sock, 0o777); err != nil {
			t.Fatal(err)
		}
		if got := connectAsNobody(t, sock); got != "closed" {
			t.Fatalf("another user talking to the plugin through an opened socket: %s; want the connection closed unanswered", got)
		}
	}
	// The host's own channel still works.
	v, err := p.Verify(t.Context(), &verify.Request{PeerChain: [][]byte{cert}})
	if err != nil || !v.Allow {
		t.Fatalf("host after the intrusion attempt: %+v, %v; want allowed", v, err)
	}
}

// A direct plugin gets the cookie and its end of the channel, which has no
// name: the launch leaves nothing in the filesystem, and the plugin
// listens on nothing. Once the host closes its end, the plugin is gone.
func TestDirectPluginChannel(t *testing.T) {
	testbin.Tlspin(t) // built before TMPDIR is watched
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	p := startMD5Over(t, "direct", md5hex(newCert(t)), host.Config{})
	var sockets []string
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.Pid()))
	for _, fd := range fds {
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p.Pid(), fd.Name()))
		if in, ok := strings.CutPrefix(link, "socket:["); ok {
			sockets = append(sockets, strings.TrimSuffix(in, "]"))
		}
	}
	if len(sockets) != 1 {
		t.Fatalf("the plugin holds %d sockets; want 1, its channel", len(sockets))
	}
	unix, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(unix)) {
		// Num RefCount Protocol Flags Type St Inode [Path]
		if f := strings.Fields(line); len(f) > 7 && f[6] == sockets[0] {
			t.Errorf("the channel has a name: %q", f[7])
		}
	}
	if sock := listeningSocket(t, p.Pid()); sock != "" {
		t.Errorf("the plugin listens on %q; want on nothing", sock)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
		t.Errorf("the launch left %d entries in TMPDIR (%s), first %q", len(ents), tmp, ents[0].Name())
	}
	pid := p.Pid()
	p.Close()
	if alive(pid) {
		t.Errorf("plugin %d alive after Close", pid)
	}
}

// tlspin-builtins starts with a timer slack of 5 ms (startWithTimerSlack),
// and the host's threads keep their own.
func TestDirectPluginTimerSlack(t *testing.T) {
	slack := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Skipf("%s: %v", path, err)
		}
		return strings.TrimSpace(string(b))
	}
	before := map[string]string{}
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, tk := range tasks {
		before[tk.Name()] = slack("/proc/" + tk.Name() + "/timerslack_ns")
	}
	p := startMD5Over(t, "direct", md5hex(newCert(t)), host.Config{})
	if got := slack(fmt.Sprintf("/proc/%d/timerslack_ns", p.Pid())); got != "5000000" {
		t.Errorf("plugin's timer slack %s ns; want 5000000", got)
	}
	tasks, _ = os.ReadDir("/proc/self/task")
	for _, tk := range tasks {
		got := slack("/proc/" + tk.Name() + "/timerslack_ns")
		if want, ok := before[tk.Name()]; ok && got != want {
			t.Errorf("host thread %s: timer slack %s ns after the start, %s before", tk.Name(), got, want)
		}
		if got == "5000000" {
			t.Errorf("host thread %s kept the plugin's timer slack", tk.Name())
		}
	}
}
