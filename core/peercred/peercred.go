// Package peercred keeps the host↔plugin channel private by the kernel's
// word: on a unix socket, SO_PEERCRED names the process at the other end.
//
//   - the socket lives in a directory only the host's user can enter
//     (go-plugin makes it 0700 and gives it in PLUGIN_UNIX_SOCKET_DIR), so
//     another user cannot reach it at all;
//   - the host accepts the connection only if the process listening on it
//     runs as the host's user and is the plugin it started, or a process
//     of the plugin's process group (CheckHost);
//   - a plugin accepts a connection only from a process that runs as its
//     user and is its parent or an ancestor: the host (CheckPlugin).
//
// This replaces go-plugin's AutoMTLS (P-521 keys, certificates and a TLS
// handshake, which cost every launch some 20–30 ms and every call the TLS
// record layer; docs/performance.md). docs/threat-model.md says what this
// leaves open. Both transports use it: core/rpc wraps it as gRPC transport
// credentials, core/direct calls it on each connection. It depends on
// neither.
package peercred

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrPeer is matched by a connection refused because the process at the
// other end of the socket is not the one expected.
var ErrPeer = errors.New("peercred: plugin socket peer refused")

// Supported reports whether this platform has peer credentials on unix
// sockets; where it does not, the host keeps go-plugin's AutoMTLS.
const Supported = supported

// Cred is what the kernel says of the other end of a unix socket.
type Cred struct {
	PID, UID int
	Path     string // the socket's path
}

// CheckHost is the host's check of the plugin whose process id is
// pluginPID: the listening end of the socket must be that process, or one
// of its process group, running as our user, and the socket must be in a
// directory no other user can enter.
func CheckHost(c Cred, pluginPID int) error {
	if err := sameUser(c); err != nil {
		return err
	}
	if err := PrivateDir(c.Path); err != nil {
		return err
	}
	if c.PID == pluginPID || pgidOf(c.PID) == pluginPID {
		return nil
	}
	return fmt.Errorf("%w: socket is served by pid %d, not by the plugin (pid %d) or its process group", ErrPeer, c.PID, pluginPID)
}

// CheckPlugin is a plugin's check of a connecting process: it must run as
// our user and be our parent or one of its ancestors (the host, which may
// have started us through a wrapper).
func CheckPlugin(c Cred) error {
	if err := sameUser(c); err != nil {
		return err
	}
	if isAncestor(c.PID) {
		return nil
	}
	return fmt.Errorf("%w: client pid %d is not the host that started this plugin", ErrPeer, c.PID)
}

// PrivateDir refuses a socket whose directory other users may enter: a
// plugin that put it there would serve whoever finds it. sock is the name
// the plugin bound: a name that is not an absolute path (a Linux abstract
// socket, "@name", or a relative one) has no directory that can be
// checked, and an abstract socket none at all to keep anyone out.
func PrivateDir(sock string) error {
	if !filepath.IsAbs(sock) {
		return fmt.Errorf("%w: socket %q is not a file named by an absolute path (an abstract or relative socket): no directory keeps other users off it; it belongs in PLUGIN_UNIX_SOCKET_DIR", ErrPeer, sock)
	}
	dir := filepath.Dir(sock)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%w: socket directory: %w", ErrPeer, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: socket directory %q has mode %v: other users can reach the socket; it belongs in PLUGIN_UNIX_SOCKET_DIR or a directory of mode 0700", ErrPeer, dir, st.Mode().Perm())
	}
	return nil
}

func sameUser(c Cred) error {
	if c.UID != euid() {
		return fmt.Errorf("%w: peer pid %d runs as uid %d, not as uid %d", ErrPeer, c.PID, c.UID, euid())
	}
	return nil
}
