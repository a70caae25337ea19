// Package sdkdeps checks what a plugin author's module gets from
// `go get github.com/tlspin/tlspin/core/sdk`: the SDK's dependency closure
// holds no CLI module (cobra, pflag), no file watcher and no test-only
// module of tlspin's, and a module that depends on the SDK builds a
// plugin that links only what the SDK needs.
package sdkdeps
