package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc/credentials"
)

// The host↔plugin channel on Linux is plain gRPC over a unix socket, kept
// private by the kernel instead of by go-plugin's AutoMTLS:
//
//   - the socket lives in a directory only the host's user can enter
//     (go-plugin makes it 0700 and gives it in PLUGIN_UNIX_SOCKET_DIR), so
//     another user cannot reach it at all;
//   - the host accepts the connection only if the process listening on it
//     runs as the host's user and is the plugin it started, or a process
//     of the plugin's process group (HostCredentials);
//   - a Go plugin accepts a connection only from a process that runs as its
//     user and is its parent or an ancestor: the host (PluginCredentials).
//
// The kernel's word (SO_PEERCRED) replaces AutoMTLS's P-521 keys,
// certificates and TLS handshake, which cost the host and every plugin
// launch some 20–30 ms and every call the TLS record layer
// (docs/performance.md). docs/threat-model.md says what this leaves open.

// ErrPeer is matched by a connection refused because the process at the
// other end of the socket is not the one expected.
var ErrPeer = errors.New("rpc: plugin socket peer refused")

// PeerCredsSupported reports whether this platform has peer credentials on
// unix sockets; where it does not, the host keeps go-plugin's AutoMTLS.
const PeerCredsSupported = peerCredsSupported

// HostCredentials are the host's transport credentials for the plugin
// whose process id pid returns: the listening end of the socket must be
// that process, or one of its process group, running as our user, and the
// socket must be in a directory no other user can enter.
func HostCredentials(pid func() int) credentials.TransportCredentials {
	return &peerCreds{check: func(c peerCred) error {
		want := pid()
		if err := sameUser(c); err != nil {
			return err
		}
		if err := privateDir(c.path); err != nil {
			return err
		}
		if c.pid == want || pgidOf(c.pid) == want {
			return nil
		}
		return fmt.Errorf("%w: socket is served by pid %d, not by the plugin (pid %d) or its process group", ErrPeer, c.pid, want)
	}}
}

// PluginCredentials are a plugin's transport credentials: the connecting
// process must run as our user and be our parent or one of its ancestors
// (the host, which may have started us through a wrapper).
func PluginCredentials() credentials.TransportCredentials {
	return &peerCreds{check: func(c peerCred) error {
		if err := sameUser(c); err != nil {
			return err
		}
		if isAncestor(c.pid) {
			return nil
		}
		return fmt.Errorf("%w: client pid %d is not the host that started this plugin", ErrPeer, c.pid)
	}}
}

// peerCred is what the kernel says of the other end of a unix socket.
type peerCred struct {
	pid, uid int
	path     string // the socket's path
}

// privateDir refuses a socket whose directory other users may enter: a
// plugin that put it there would serve whoever finds it.
func privateDir(sock string) error {
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

func sameUser(c peerCred) error {
	if c.uid != euid() {
		return fmt.Errorf("%w: peer pid %d runs as uid %d, not as uid %d", ErrPeer, c.pid, c.uid, euid())
	}
	return nil
}

// peerCreds are gRPC transport credentials that encrypt nothing and admit
// a connection on a unix socket only if check accepts its peer.
type peerCreds struct {
	check func(peerCred) error
}

// peerInfo is the AuthInfo of a checked connection.
type peerInfo struct {
	credentials.CommonAuthInfo
	PID, UID int
}

func (peerInfo) AuthType() string { return "peercred" }

func (p *peerCreds) handshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, err := peerOf(conn)
	if err == nil {
		err = p.check(c)
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	// Nobody else can read or inject on a connected unix socket.
	return conn, peerInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}, PID: c.pid, UID: c.uid}, nil
}

func (p *peerCreds) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return p.handshake(conn)
}

func (p *peerCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return p.handshake(conn)
}

func (p *peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}

func (p *peerCreds) Clone() credentials.TransportCredentials { c := *p; return &c }

func (p *peerCreds) OverrideServerName(string) error { return nil }
