// Package adversary runs the attacks of tlspin's threat model against the
// real tlspin binary and real plugin processes, on loopback only: hostile
// servers and clients (real openssl where it does the attack best, Go
// programs where it cannot) and hostile plugins. Each test is an attack
// that once worked or could work; it must keep failing.
// docs/threat-model.md lists them ("The attacks the suite runs").
package adversary
