// Package tlspin is TLS whose trust is decided by verifier plugins: a
// program names the verifiers it trusts (md5pin, sha256pin, spkipin,
// allowlist, tofu, ca, or any tlspin-verifier-NAME executable), and every
// peer certificate of every handshake is decided by them, each running as
// its own process, exactly as the tlspin command runs them.
//
// # Start, configure, close
//
//	v, err := tlspin.Start(ctx, "spkipin:pin=sha256//AbC...=")
//	if err != nil { ... }
//	defer v.Close()
//	client := &http.Client{Transport: &http.Transport{TLSClientConfig: v.ClientConfig("api.internal")}}
//
// Start takes verifier specs in the syntax of tlspin's --verifier: NAME,
// NAME:key=value,key=value (a key may repeat, for backup pins; in a value,
// \, is a comma and \\ a backslash), or the path of a plugin executable.
// It returns when every verifier has started and accepted its options; a
// mistake in a spec, an unknown verifier or an option a verifier refuses
// is an error matching ErrBadConfig, and nothing is left running. The
// verifiers start in parallel, and the first that fails to start stops
// the others' starts, so a slow plugin does not hold back the error of
// another; when ctx ends first, the error matches ctx's. Several
// verifiers must all allow a peer. StartWith takes the same specs
// followed by options (Go allows only one variadic list, so the specs
// come first, as a slice): WithRequire (all or any), WithVerifier
// (options given as values, any character allowed), WithPluginDirs,
// WithPluginSHA256 and WithPluginChecksums (run a plugin only if its
// executable has the pinned SHA-256), WithVerifyTimeout,
// WithStartTimeout, WithLogger, WithoutCache, WithPluginEnv, WithGetenv,
// WithTlspinBinary, WithMaxHandshakes (for Listen), WithClientCertificate
// (for Dial, to a server that requires one: mutual TLS),
// WithHandshakeTimeout and WithoutRecheck (for Dial and Listen).
//
// The configurations a *Verifiers returns decide from
// tls.Config.VerifyConnection, which crypto/tls calls on every handshake,
// resumed ones included, and they fail closed: a verifier that crashes,
// hangs past the verify timeout or answers garbage rejects the peer (it is
// restarted for the next one). Verdicts a verifier marks as reusable are
// cached unless WithoutCache. They work wherever a *tls.Config does:
// net/http, tls.Listen, gRPC's credentials.NewTLS.
//
//   - ClientConfig(serverName) trusts exactly the servers the verifiers
//     allow. Certificate authorities play no part unless a verifier (ca)
//     checks them.
//   - ServerConfig(cert) presents cert and requires every client to present
//     a certificate the verifiers allow (mutual TLS).
//   - HookClientConfig and HookServerConfig fill a configuration of your
//     own instead, keeping what it already has: a VerifyConnection already
//     set runs after the verifiers allowed the peer, a GetConfigForClient
//     still chooses the configuration, and the verifiers are hooked into
//     what it returns. A server configuration without a certificate
//     works with net/http's ServeTLS(ln, certFile, keyFile), whose copy
//     of it holds the files' certificate; its clients are verified
//     without their address, so tofu refuses a first use there.
//   - Dial(ctx, network, addr) connects and completes the handshake,
//     presenting the certificate of WithClientCertificate to a server
//     that asks for one; it fits http.Transport.DialTLSContext. Listen(network, addr, cert)
//     returns a listener that hands out only connections whose client was
//     allowed; it fits http.Server.Serve and gRPC. Both take TCP only
//     (network "tcp", "tcp4" or "tcp6"): the verifiers need the peer's
//     address, which a unix socket's clients do not have.
//
// A TLS connection is verified at its handshake. The connections of Dial
// and Listen are also asked about again whenever a verifier's policy
// changes (an allowlist or a tofu store edited, a plugin restarted), and
// closed if the verifiers no longer allow their peer: removing a pin cuts
// off its open connections too (a tofu line removed makes its peer a
// first use again, allowed in tofu's default mode: replace the line to
// cut the peer off). Watch does the same for a connection made with a
// configuration; PeerOf gives its peer.
//
// Close stops the plugins. It is idempotent, and afterwards every
// configuration v made rejects every peer (ErrClosed).
//
// # Errors
//
// A rejected peer makes the handshake fail with a *RejectionError, which
// says which peer was rejected, what each verifier said, and the peer
// certificate's SHA-256 and public-key (SPKI) fingerprints. Branch on it
// with errors.Is:
//
//   - ErrRejected: the verdicts rejected the peer; it is not the one
//     expected.
//   - ErrVerifierFailed: a verifier could not decide (it returned an
//     error or no verdict, crashed, timed out or answered garbage) and
//     the peer was rejected to fail closed; trying again may succeed.
//     With RequireAll a verdict against the peer settles it, so a
//     failure alongside one is ErrRejected; with RequireAny any failure
//     could have been the allowing verifier, so it is ErrVerifierFailed.
//
// An error a verifier itself returns rejects the peer, as a failure: it
// is not a verdict, and does not restart the plugin. The tlspin command
// exits 3 on ErrRejected and 4 on ErrVerifierFailed.
//
// Before any handshake, Dial and Listen refuse arguments they cannot use
// (a network other than TCP's, an address without a port, a certificate
// without its key) with an error matching ErrBadArgument; what the
// network itself answers (a port in use, a refused connection) is a
// *net.OpError. A Verifiers that Start or StartWith did not make (the
// zero value, a nil pointer) has no verifiers and fails closed: its
// methods return an error matching ErrBadArgument, and its
// configurations reject every peer with one.
//
// These are a client's errors about its server, and a server's about its
// clients. A client whose own certificate the server refuses learns it
// from the server's alert: in TLS 1.3 the client's handshake completes
// before the server has judged its certificate, so Dial succeeds and the
// first Read returns "remote error: tls: bad certificate".
//
// # Built-in verifiers from any program
//
// Built-in verifiers run out of process too, as a child process of your
// program. Add one line first thing in main:
//
//	func main() {
//		tlspin.ServeBuiltin()
//		...
//	}
//
// Start then runs a built-in verifier by re-executing your program (on
// Linux /proc/self/exe, the very binary running) with the arguments
// `__verifier NAME`, and ServeBuiltin, seeing those arguments and
// go-plugin's handshake variable, serves the verifier and exits. Without
// that line, Start runs built-ins with the tlspin binary found on $PATH
// (`tlspin __verifier NAME`), which, as it decides whom to trust, is
// refused as any verifier plugin is if another user may have written it
// or may replace it (its owner, its mode, the directories on its path);
// with neither, naming a built-in is an error that says why. Which one ran is logged at debug level
// (TLSPIN_LOG_LEVEL=debug with the default logger).
//
// # Trust on first use
//
// The tofu verifier records a peer's key on first contact. Its key for a
// server is the server name with the dialled port, HOST:PORT, exactly as
// `tlspin send` records it; a server records a client as client@IP.
// Records happen only once a handshake has succeeded, which Dial, Listen
// and the tlspin command know; with your own TLS code, call
// ClientConfigForAddr's confirm function with the connection once its
// handshake has succeeded, or Confirm for a server after the handshake.
// crypto/tls asks the verifiers before it checks the peer's signature, so
// a peer presenting a stolen certificate without its key is allowed and
// then fails the handshake: confirm refuses a connection whose handshake
// did not complete, or that is not the one its configuration verified
// (ErrBadArgument), and records nothing. What waits for Confirm is kept a minute, for at most
// 1,024 connections at once; a first use whose record went
// before Confirm came is rejected by Confirm (ErrVerifierFailed), failing
// closed. A configuration used alone (ClientConfig or
// HookClientConfig in an http.Transport's TLSClientConfig) knows neither
// the address dialled nor when a handshake succeeded, so it cannot
// record: there a first use is rejected, failing closed, and only a
// server already recorded under the server name alone (a hand-written
// line without a port) is allowed. With net/http, give the transport
// Dial as its DialTLSContext, and serve on Listen.
//
// # Plugins
//
// A verifier that is not built in is an executable named
// tlspin-verifier-NAME, searched in WithPluginDirs, then
// $TLSPIN_PLUGIN_PATH, then the directory of this program, then $PATH; a
// spec may also name it by path. Plugins get only PATH, HOME, TMPDIR and
// TLSPIN_LOG_LEVEL of your environment (WithPluginEnv passes more), never
// your standard input or output; they log to your logger. See
// docs/writing-a-verifier.md.
//
// # Compatibility
//
// What this package exports follows semantic versioning: Start,
// StartWith, the options, the methods of Verifiers, ServeBuiltin, Peer
// and PeerOf, the error values and RejectionError's exported fields, and the spec syntax.
// The text of errors and logs is not covered; branch on types and values.
// Everything under core/ and internal/ may change in any release. No
// version is tagged yet: until v1.0.0, as semantic versioning allows, a
// change may still break them, and its release notes say so (the
// confirm function of ClientConfigForAddr took the connection so, to
// refuse a failed handshake).
package tlspin
