// Package host launches verifier plugins as separate processes and keeps
// them running: it finds a verifier by name, starts it through go-plugin
// on a private unix socket whose serving process the kernel vouches for
// (rpc.HostCredentials; AutoMTLS where it cannot), or tlspin-builtins over
// a socket pair it inherits (core/direct), configures it, bounds every
// call with a timeout, restarts
// a plugin that died or hung (with backoff), and kills every plugin process
// it started when it is closed. Every failure is a rejection: a *Plugin
// fails closed.
package host
