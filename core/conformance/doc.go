// Package conformance checks that a verifier plugin binary, written in any
// language, behaves as the tlspin host needs. It launches the plugin
// itself, as tlspin's host does on Linux, reads the handshake line and
// every byte of stdout, dials gRPC on its own with the host's peer check,
// and runs a fixed checklist (Items): handshake and protocol version, a
// quiet stdout, the channel (a socket in a private directory, served by
// the plugin's own process), Describe, Configure's refusals (INVALID_ARGUMENT naming the
// option), Verify on the compare scenarios and on malformed chains, errors
// that stay errors, Verify latency and a prompt shutdown.
//
// It only reads the plugin's answers: it never trusts a peer because of
// them, and the verdicts a plugin gives here decide nothing but the report.
package conformance
