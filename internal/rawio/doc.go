// Package rawio reads and writes a connection's non-blocking descriptor
// with raw system calls, for the few descriptors where a call's cost is
// counted in context switches: the pipes between tlspin and
// tlspin-builtins (core/direct), and the bench's own round trip to a
// process that answers at once (internal/bench's floor). rawio_linux.go
// says why a raw call is cheaper than os.File's; elsewhere Quiet and
// QuietLinger return the connection unchanged.
package rawio
