package rpc

import (
	"context"
	"net"

	"google.golang.org/grpc/credentials"

	"github.com/tlspin/tlspin/core/peercred"
)

// The host↔plugin channel on Linux is plain gRPC over a unix socket, kept
// private by the kernel instead of by go-plugin's AutoMTLS: core/peercred
// says how. The credentials below apply its checks to every connection
// before a byte of gRPC is sent.

// ErrPeer is matched by a connection refused because the process at the
// other end of the socket is not the one expected.
var ErrPeer = peercred.ErrPeer

// PeerCredsSupported reports whether this platform has peer credentials on
// unix sockets; where it does not, the host keeps go-plugin's AutoMTLS.
const PeerCredsSupported = peercred.Supported

// HostCredentials are the host's transport credentials for the plugin
// whose process id pid returns (peercred.CheckHost).
func HostCredentials(pid func() int) credentials.TransportCredentials {
	return &peerCreds{check: func(c peercred.Cred) error { return peercred.CheckHost(c, pid()) }}
}

// PluginCredentials are a plugin's transport credentials: the connecting
// process must be the host that started it (peercred.CheckPlugin).
func PluginCredentials() credentials.TransportCredentials {
	return &peerCreds{check: peercred.CheckPlugin}
}

// peerCreds are gRPC transport credentials that encrypt nothing and admit
// a connection on a unix socket only if check accepts its peer.
type peerCreds struct {
	check func(peercred.Cred) error
}

// peerInfo is the AuthInfo of a checked connection.
type peerInfo struct {
	credentials.CommonAuthInfo
	PID, UID int
}

func (peerInfo) AuthType() string { return "peercred" }

func (p *peerCreds) handshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, err := peercred.Of(conn)
	if err == nil {
		err = p.check(c)
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	// Nobody else can read or inject on a connected unix socket.
	return conn, peerInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}, PID: c.PID, UID: c.UID}, nil
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
