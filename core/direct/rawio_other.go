//go:build !linux

package direct

import (
	"io"
)

// quiet returns c: the raw system calls of rawio_linux.go are for Linux.
func quiet(c io.ReadWriter) io.ReadWriter { return c }

// quietLinger returns c, as quiet does.
func quietLinger(c io.ReadWriter) io.ReadWriter { return c }
