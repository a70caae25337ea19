package proxy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/peercred"
	"github.com/tlspin/tlspin/internal/files"
	"github.com/tlspin/tlspin/internal/ratelog"
)

// ListenUnix listens on a unix socket at path that only this user can
// use: on TCP loopback any local user could connect, and in ClientMode
// reach the target as the holder of the proxy's client certificate.
//
//   - the socket's mode is 0600, so another user's connect fails;
//   - since that mode is set after bind, which creates the socket with
//     the umask's, every accepted connection is checked too: one whose
//     peer (SO_PEERCRED) is neither this user nor root is closed unread,
//     with a warning (at most one a second). Root is let in because it
//     could read the --cert key and this process's memory anyway;
//   - an existing path is taken only if it is a stale socket of this
//     user's (connecting to it is refused); anything else, a file, a
//     socket in use or another user's, is left alone and refused;
//   - an abstract socket (@name) has no mode at all, and is refused;
//   - so is a path through a directory (or a link) another user could
//     write (files.Resolve): they could put their own socket in its
//     place, or a link there between bind and chmod, which would then
//     change the mode of the file it leads to.
//
// A unix socket has no reset: a connection the proxy cuts (a limit, a
// revocation, the target unreachable) is seen by its peer as a plain
// close, the end of the stream, not as the error a TCP peer gets.
//
// Closing the listener removes the socket. Where the platform has no peer
// credentials (peercred.Supported), ListenUnix fails rather than listen
// unchecked.
func ListenUnix(ctx context.Context, path string, log hclog.Logger) (net.Listener, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if err := CheckUnixListen(path); err != nil {
		return nil, err
	}
	if err := removeStale(ctx, path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("proxy: listen unix %q: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("proxy: listen unix %q: %w", path, err)
	}
	return &ownerListener{UnixListener: ln.(*net.UnixListener), uid: os.Geteuid(), log: log}, nil
}

// maxUnixPath is the longest path a unix socket can be bound to: its
// address holds the name and a NUL.
var maxUnixPath = len(syscall.RawSockaddrUnix{}.Path) - 1

// CheckUnixListen returns the error ListenUnix would give for path before
// touching it (abstract, empty, longer than a socket's name can be, in a
// directory that does not exist, through a directory another user could
// write), or nil: for a command to check its flags before anything
// starts. What is at path itself is left to ListenUnix.
func CheckUnixListen(path string) error {
	switch {
	case path == "":
		return errors.New("proxy: listen unix: empty path: want unix:/path")
	case strings.HasPrefix(path, "@"):
		return fmt.Errorf("proxy: listen unix %q: an abstract socket has no file mode, so any local user could connect: give a path", path)
	case !peercred.Supported:
		return fmt.Errorf("proxy: listen unix %q: this platform cannot name a unix socket's peer, so other users could not be kept out", path)
	case len(path) > maxUnixPath:
		return fmt.Errorf("proxy: listen unix %q: the path is %d bytes, longer than a unix socket's name can be (%d): give a shorter one", path, len(path), maxUnixPath)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("proxy: listen unix %q: no such directory %q: %w", path, dir, err)
	}
	if err != nil {
		return fmt.Errorf("proxy: listen unix %q: %w", path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("proxy: listen unix %q: %q is not a directory", path, dir)
	}
	if _, err := files.Resolve(path); err != nil {
		return fmt.Errorf("proxy: listen unix %q: %w", path, err)
	}
	return nil
}

// removeStale clears path for a new socket: nothing there is fine, a
// stale socket of ours is removed, anything else is refused.
func removeStale(ctx context.Context, path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("proxy: listen unix %q: %w", path, err)
	}
	if st.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("proxy: listen unix %q: the path exists and is not a socket (%v): remove it or give another path", path, st.Mode().Type())
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("proxy: listen unix %q: the socket there belongs to uid %d, not to us (uid %d): give another path", path, sys.Uid, os.Geteuid())
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("proxy: listen unix %q: the socket is in use (a process accepts on it): stop it or give another path", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("proxy: listen unix %q: the socket there is neither stale nor in use: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("proxy: listen unix %q: removing the stale socket: %w", path, err)
	}
	return nil
}

// ownerListener accepts only connections of its user (and root).
type ownerListener struct {
	*net.UnixListener
	uid   int
	log   hclog.Logger
	warns ratelog.Limiter
}

func (l *ownerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.UnixListener.Accept()
		if err != nil {
			return nil, err
		}
		cred, err := peercred.Of(c)
		if err == nil && (cred.UID == l.uid || cred.UID == 0) {
			return &unixPeerConn{Conn: c, peer: unixPeer(fmt.Sprintf("unix, uid %d, pid %d", cred.UID, cred.PID))}, nil
		}
		c.Close()
		kv := []any{"addr", l.Addr().String()}
		if err != nil {
			kv = append(kv, "error", err)
		} else {
			kv = append(kv, "remote", fmt.Sprintf("unix, uid %d, pid %d", cred.UID, cred.PID), "want_uid", l.uid)
		}
		l.warns.Warn(l.log, "refused a local connection of another user", kv...)
	}
}

// unixPeer names a unix socket's client by its credentials: a unix
// client's own address is empty.
type unixPeer string

func (unixPeer) Network() string  { return "unix" }
func (p unixPeer) String() string { return string(p) }

// unixPeerConn is an accepted unix connection named by its peer.
type unixPeerConn struct {
	net.Conn
	peer unixPeer
}

func (c *unixPeerConn) RemoteAddr() net.Addr { return c.peer }

// NetConn returns the socket, for half-closes and splice (pipe.go).
func (c *unixPeerConn) NetConn() net.Conn { return c.Conn }
