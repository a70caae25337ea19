package files

import (
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ReadGiven reads path, a file an operator named (a certificate, a key),
// at most max bytes of it (more is an error), without ever waiting for a
// writer: a named pipe that no program has open for writing is refused
// at once, where opening it would wait for one for good, deaf to SIGTERM.
// A pipe with a writer, as `--cert <(...)` gives, is read to its end.
// With regularOnly, anything but a regular file is refused, also at once:
// what a server that is running reads again, since a writer could make
// it wait as long as it likes.
func ReadGiven(path string, max int64, regularOnly bool) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|oNonblock, 0)
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	if regularOnly && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("files: %q is not a regular file (%s)", path, st.Mode().Type())
	}
	// Opened without waiting, a pipe is read through the runtime's poller:
	// it waits for a writer's data, and ends at once when there is none.
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("files: read %q: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("files: %q is larger than %d bytes", path, max)
	}
	if len(data) == 0 && st.Mode().Type() == fs.ModeNamedPipe {
		return nil, fmt.Errorf("files: %q is a named pipe that no program writes to", path)
	}
	return data, nil
}
