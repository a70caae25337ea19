//go:build !unix

package files

// oNonblock: no named pipes to wait on.
const oNonblock = 0
