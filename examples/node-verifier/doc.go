// Package nodeverifier holds the Go tests of the Node.js verifier example
// (tlspin-verifier-cnpin): they run it through tlspin's plugin host and
// through `tlspin send` against a real TLS server. The example itself is
// JavaScript; see README.md.
package nodeverifier
