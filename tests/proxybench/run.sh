#!/usr/bin/env bash
# tlspin proxy vs stunnel, same machine, one run (issue 11). Heavy: run it
# on a quiet machine, then copy the output to docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v stunnel4 >/dev/null || {
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stunnel4 >/dev/null
}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
# Static, as the README installs them.
CGO_ENABLED=0 go build -o "$bin/" ./cmd/tlspin ./cmd/tlspin-builtins
go run ./tests/proxybench -tlspin "$bin/tlspin" -stunnel stunnel4 "$@"
