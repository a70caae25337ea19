//go:build !linux

package rawio

import (
	"io"
)

// Quiet returns c: the raw system calls of rawio_linux.go are for Linux.
func Quiet(c io.ReadWriter) io.ReadWriter { return c }

// QuietLinger returns c, as Quiet does.
func QuietLinger(c io.ReadWriter) io.ReadWriter { return c }
