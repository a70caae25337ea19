// Package pythonverifier holds the Go tests of the Python verifier example
// (tlspin-verifier-pyspki): they run it through the tlspin plugin host, as
// `tlspin send --verifier pyspki` does. The example itself is Python; see
// README.md.
package pythonverifier
