package host_test

import (
	"context"
	"testing"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/testbin"
)

// channels are the two ways the host↔plugin channel is protected: the
// kernel's word on the socket's peer (Linux), and go-plugin's AutoMTLS.
var channels = []struct {
	name     string
	autoMTLS bool
}{{"peercred", false}, {"automtls", true}}

func md5Spec(b *testing.B, pin string) host.Spec {
	b.Helper()
	f := &host.Finder{Builtins: []string{"md5pin"}, Self: testbin.Tlspin(b), SelfArgs: func(n string) []string { return []string{"__verifier", n} }}
	found, err := f.Find("md5pin")
	if err != nil {
		b.Fatal(err)
	}
	return found.Spec(verify.Options{"pin": {pin}})
}

func benchConfig(autoMTLS bool) host.Config {
	return host.Config{Env: append(host.PluginEnv(func(string) string { return "" }), "GOMAXPROCS=1"), AutoMTLS: autoMTLS}
}

// BenchmarkLaunch starts a built-in plugin (process, go-plugin handshake,
// Describe, Configure) and stops it.
func BenchmarkLaunch(b *testing.B) {
	spec := md5Spec(b, md5hex(newCert(b)))
	for _, ch := range channels {
		b.Run(ch.name, func(b *testing.B) {
			for b.Loop() {
				p, err := host.Start(context.Background(), spec, benchConfig(ch.autoMTLS))
				if err != nil {
					b.Fatal(err)
				}
				p.Close()
			}
		})
	}
}

// BenchmarkVerify makes one uncached Verify call through a running plugin.
func BenchmarkVerify(b *testing.B) {
	c := newCert(b)
	spec := md5Spec(b, md5hex(c))
	req := &verify.Request{PeerChain: [][]byte{c}, Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:443"}
	for _, ch := range channels {
		b.Run(ch.name, func(b *testing.B) {
			p, err := host.Start(context.Background(), spec, benchConfig(ch.autoMTLS))
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			for b.Loop() {
				v, err := p.Verify(context.Background(), req)
				if err != nil || !v.Allow {
					b.Fatalf("%+v, %v", v, err)
				}
			}
		})
	}
}
