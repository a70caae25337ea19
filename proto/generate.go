// Package proto holds the wire contract between tlspin and its verifier
// plugins. The generated Go code is committed; regenerate it with
//
//	go generate ./proto/...
//
// which needs protoc (Debian: protobuf-compiler) and the two Go plugins:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
//
// TestGeneratedCodeIsCurrent fails when the committed code is stale.
package proto

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative verifier/v1/verifier.proto
