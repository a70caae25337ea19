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
// Version 5: a frame's header carries the id of its request (4: a
// request carries NoCommit; 3: the channel is a socket pair the plugin
// inherits; 2: a unix socket the plugin listened on in a private
// directory; 1: JSON frames).
const Version = 5

// ErrHandshake is matched by a handshake line that is not the direct
// protocol's.
var ErrHandshake = errors.New("direct: bad handshake line")

// maxQuoted caps how much of a bad line an error quotes.
const maxQuoted = 200

// EnvChannel names the variable through which the host tells the plugin
// which of its descriptors is the channel (NewChannel).
const EnvChannel = "TLSPIN_PLUGIN_CHANNEL_FD"

// HandshakeLine is the line a plugin writes on stdout once it serves the
// channel it inherited as descriptor fd, in go-plugin's layout:
// CORE-VERSION|PROTOCOL-VERSION|NETWORK|ADDRESS|PROTOCOL.
func HandshakeLine(fd int) string {
	return fmt.Sprintf("1|%d|fd|%d|%s\n", Version, fd, Protocol)
}

// ParseHandshake returns the descriptor a handshake line written by
// HandshakeLine names, or an error that quotes what the line said instead.
func ParseHandshake(line string) (int, error) {
	line = strings.TrimRight(line, "\r\n")
	quoted := line
	if len(quoted) > maxQuoted {
		quoted = quoted[:maxQuoted] + "…"
	}
	f := strings.Split(line, "|")
	if len(f) != 5 || f[0] != "1" || f[2] != "fd" || f[4] != Protocol {
		return 0, fmt.Errorf("%w: %q is not \"1|%d|fd|N|%s\"", ErrHandshake, quoted, Version, Protocol)
	}
	if v, err := strconv.Atoi(f[1]); err != nil || v != Version {
		return 0, fmt.Errorf("%w: protocol version %q, this tlspin speaks %d: tlspin-builtins is from another build", ErrHandshake, f[1], Version)
	}
	fd, err := strconv.Atoi(f[3])
	if err != nil || fd < 0 {
		return 0, fmt.Errorf("%w: %q names no descriptor", ErrHandshake, quoted)
	}
	return fd, nil
}
