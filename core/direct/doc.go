// Package direct is the protocol between tlspin and its own built-in
// verifiers binary (tlspin-builtins): binary frames on pipes passed over a
// socket pair the plugin inherits, with no gRPC, protobuf or go-plugin in
// either binary.
//
// Why: on a 2-core machine a binary that links gRPC, protobuf and go-plugin
// needs 16–25 ms from exec to its handshake line (a bare Go binary 5 ms,
// one linking only the built-in verifiers about 9 ms), and one gRPC unary
// call costs 170–290 µs in goroutine hand-offs where a unix-socket
// ping-pong costs 34 µs. Issue 13 asks for a launch of at most 10 ms and
// an uncached Verify of at most 100 µs.
//
// It is internal to one build: tlspin only speaks it to the tlspin-builtins
// binary built with it, so it has no version negotiation. Third-party
// plugins keep go-plugin and gRPC (core/rpc, core/sdk).
//
// Channel: the host makes a socket pair (NewChannel) and starts the
// plugin with one end as an inherited descriptor, which EnvChannel names;
// the plugin checks that it is a socket made by its parent and writes its
// handshake line. The channel has no name in the filesystem, so no other
// process can connect to it or stand in for either end. For each
// connection the host passes the plugin two pipes over it (SCM_RIGHTS),
// the requests' read end and the answers' write end, and the calls travel
// on the pipes (pipes.go says why). The plugin takes exactly a pipe's read
// end and another's write end, or closes what it was passed; the host
// never takes a descriptor. When the host closes the channel, or exits,
// the plugin stops. A host may offer a connection, and send a request on
// it, before the handshake line has come: both wait in the channel and
// the pipes until the plugin serves (core/host configures a verifier it
// knows so, while the process starts).
//
// Wire: each message is a frame: a 4-byte big-endian length, a 4-byte
// big-endian id, and that many bytes of one request or answer (codec.go),
// at most MaxFrame bytes. The host sends a request naming a method
// (describe, configure, verify, commit, watch, shutdown); the plugin
// answers with a result or an error, under the request's id. One call at
// a time per connection: the caller's goroutine writes the request and
// reads the answer itself, so a call costs no goroutine or channel
// hand-off. Concurrent calls use several connections (Client's pool). The
// id counts the connection's requests, and an answer under any other id
// than the one asked is garbage: a plugin that answered a request twice
// would otherwise have its second answer, about one peer, taken for the
// next call's, about another, wherever it landed. A watch connection
// carries only the answer to watch and then one frame per policy change,
// all under the watch's id. Both sides read and write with raw system
// calls (internal/rawio says why).
package direct
