package host_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tlspin/tlspin/core/verify"
)

// listeningSocket returns the path of the unix socket process pid listens
// on, from /proc.
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
	t.Fatalf("pid %d listens on no unix socket", pid)
	return ""
}

// firstBytes are what a client sends first over each channel: the start
// of an HTTP/2 connection for gRPC, a Describe request for the direct
// protocol.
var firstBytes = map[string]string{
	"grpc":   `b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])`,
	"direct": `len(b'{"method":"describe"}').to_bytes(4, "big") + b'{"method":"describe"}'`,
}

// asNobody runs python3 as uid 65534: it connects to sock, sends what a
// client of channel ch sends first and prints what happened.
func asNobody(t *testing.T, ch, sock string) string {
	t.Helper()
	py := "/usr/bin/python3" // out of another user's reach elsewhere (pyenv)
	if _, err := os.Stat(py); err != nil {
		t.Skip("no /usr/bin/python3:", err)
	}
	cmd := exec.Command(py, "-c", `import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect:", e.strerror); sys.exit()
try:
    s.sendall(`+firstBytes[ch]+`)
except (BrokenPipeError, ConnectionResetError):
    print("closed"); sys.exit()  # refused before it could even send
try:
    print("answered" if s.recv(100) else "closed")
except ConnectionResetError:
    print("closed")
except OSError as e:
    print("recv:", e.strerror)
`, sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 as nobody: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestChannelClosedToOtherUsers: another local user can neither reach a
// plugin's socket (its directory is the host's, 0700) nor, if the
// directory were opened to it, get an answer from a plugin built with the
// SDK or from tlspin-builtins (each checks that the connecting process is
// its host).
func TestChannelClosedToOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	eachChannel(t, testChannelClosedToOtherUsers)
}

func testChannelClosedToOtherUsers(t *testing.T, ch string) {
	cert := newCert(t)
	p := startMD5Over(t, ch, md5hex(cert), discConfig(t))
	sock := listeningSocket(t, p.Pid())
	if got := asNobody(t, ch, sock); got != "connect: Permission denied" {
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
	if got := asNobody(t, ch, sock); got != "closed" {
		t.Fatalf("another user talking to the plugin through an opened socket: %s; want the connection closed unanswered", got)
	}
	// The host's own connection still works.
	v, err := p.Verify(t.Context(), &verify.Request{PeerChain: [][]byte{cert}})
	if err != nil || !v.Allow {
		t.Fatalf("host after the intrusion attempt: %+v, %v; want allowed", v, err)
	}
}
