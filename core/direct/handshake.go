package direct

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Protocol names the direct protocol in the handshake line, where a
// go-plugin plugin writes "grpc".
const Protocol = "tlspin-direct"

// Version is the direct protocol's version. The host and tlspin-builtins
// come from one build, so a mismatch means a stale tlspin-builtins.
// Version 2: binary frames on pipes passed over the socket (1: JSON on
// the socket).
const Version = 2

// ErrHandshake is matched by a handshake line that is not the direct
// protocol's.
var ErrHandshake = errors.New("direct: bad handshake line")

// maxQuoted caps how much of a bad line an error quotes.
const maxQuoted = 200

// HandshakeLine is the line a plugin writes on stdout once it listens on
// the unix socket at path, in go-plugin's layout:
// CORE-VERSION|PROTOCOL-VERSION|NETWORK|ADDRESS|PROTOCOL.
func HandshakeLine(path string) string {
	return fmt.Sprintf("1|%d|unix|%s|%s\n", Version, path, Protocol)
}

// ParseHandshake returns the socket path of a handshake line written by
// HandshakeLine, or an error that quotes what the line said instead.
func ParseHandshake(line string) (string, error) {
	line = strings.TrimRight(line, "\r\n")
	quoted := line
	if len(quoted) > maxQuoted {
		quoted = quoted[:maxQuoted] + "…"
	}
	f := strings.Split(line, "|")
	if len(f) != 5 || f[0] != "1" || f[2] != "unix" || f[4] != Protocol || f[3] == "" {
		return "", fmt.Errorf("%w: %q is not \"1|%d|unix|PATH|%s\"", ErrHandshake, quoted, Version, Protocol)
	}
	if v, err := strconv.Atoi(f[1]); err != nil || v != Version {
		return "", fmt.Errorf("%w: protocol version %q, this tlspin speaks %d: tlspin-builtins is from another build", ErrHandshake, f[1], Version)
	}
	return f[3], nil
}

// EnvSocketDir names the variable through which the host gives the plugin
// a directory that only their user can enter (mode 0700); the plugin
// listens on a socket in it.
const EnvSocketDir = "TLSPIN_PLUGIN_SOCKET_DIR"
