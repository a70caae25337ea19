package host

import (
	"strings"
	"sync"
)

// stderrTailSize is how much of a plugin's last stderr output is kept to
// explain a failed start.
const stderrTailSize = 2048

// stderrTail keeps the last bytes a plugin wrote to stderr, so that a
// plugin that dies before the handshake can say why in the error, whatever
// the log level.
type stderrTail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *stderrTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - stderrTailSize; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns the kept output, trimmed, or "".
func (t *stderrTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
