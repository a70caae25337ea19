// Package wire tests what docs/writing-a-verifier.md says about the wire
// between tlspin's host and a plugin ("On the wire"): what is required and
// what is optional, the magic cookie, the private socket (AutoMTLS off Linux), where
// stdout written after the handshake goes, and the optional Commit RPC.
// Each claim is checked against core/host with a minimal plugin that
// leaves out one piece at a time (testdata/rawplugin), Go SDK plugins and
// Python SDK plugins.
package wire
