// Package conformance checks that a verifier plugin binary, written in any
// language, behaves as the tlspin host needs. It launches the plugin
// itself, as go-plugin's host does with AutoMTLS, reads the handshake line
// and every byte of stdout, dials gRPC over mutual TLS on its own, and
// runs a fixed checklist (Items): handshake and protocol version, a quiet
// stdout, AutoMTLS (certificate with DNS SAN localhost, client certificate
// required), Describe, Configure's refusals (INVALID_ARGUMENT naming the
// option), Verify on the compare scenarios and on malformed chains, errors
// that stay errors, Verify latency and a prompt shutdown.
//
// It only reads the plugin's answers: it never trusts a peer because of
// them, and the verdicts a plugin gives here decide nothing but the report.
package conformance
