// Package verifierv1 is the Go code generated from verifier.proto, the
// wire contract between tlspin and its verifier plugins (protocol version
// 1). Only core/rpc uses it: everything else speaks core/verify's
// hand-written types. Regenerate with `go generate ./proto/...`.
package verifierv1
