// Package pythonsdk holds the Go tests of the Python SDK (tlspin_sdk, see
// README.md): they install it with pip as an author does, run its Python
// unit tests, and check what it makes against Go's crypto/x509 and
// tlspin's plugin host.
package pythonsdk
