//go:build !unix

package keypair

// oNonblock: no FIFOs to wait on.
const oNonblock = 0
