//go:build !linux

package peercred

import (
	"fmt"
	"net"
)

const supported = false

func euid() int { return -1 }

// Of fails: this platform cannot name the peer of a unix socket.
func Of(net.Conn) (Cred, error) {
	return Cred{}, fmt.Errorf("%w: no peer credentials on unix sockets on this platform", ErrPeer)
}

func pgidOf(int) int { return -1 }

func isAncestor(int) bool { return false }
