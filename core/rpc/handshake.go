// Package rpc is the glue between the verify.Verifier interface and the
// go-plugin gRPC transport: the handshake, the versioned plugin map, and the
// client and server adapters. Generated protobuf types never leave this
// package; conversion happens in convert.go only.
package rpc

import (
	"github.com/hashicorp/go-plugin"

	"github.com/tlspin/tlspin/core/plugproc"
)

// PluginName is the name a verifier is registered under in the plugin map.
const PluginName = "verifier"

// ProtocolVersion is the verifier protocol this build speaks.
const ProtocolVersion = 1

// Handshake is shared by the host and every plugin. A binary started
// without the magic cookie refuses to run as a plugin.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   plugproc.CookieKey,
	MagicCookieValue: plugproc.CookieValue,
}

// Plugins returns the versioned plugin map. impl is nil on the host side.
// A v2 protocol would add a second entry here without breaking v1 plugins.
func Plugins(impl *GRPCPlugin) map[int]plugin.PluginSet {
	if impl == nil {
		impl = &GRPCPlugin{}
	}
	return map[int]plugin.PluginSet{
		ProtocolVersion: {PluginName: impl},
	}
}

// SupportedVersions lists the protocol versions this build speaks.
func SupportedVersions() []int { return []int{ProtocolVersion} }
