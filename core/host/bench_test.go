package host_test

import (
	"context"
	"testing"

	"github.com/tlspin/tlspin/core/host"
	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/bench"
)

// benchChannels are the ways the host can talk to a built-in verifier:
// tlspin-builtins over the direct protocol, and the tlspin binary over
// go-plugin's gRPC with the socket protected by the kernel's word on its
// peer (Linux) or by go-plugin's AutoMTLS.
var benchChannels = []benchChannel{{"direct", "direct", false}, {"grpc-peercred", "grpc", false}, {"grpc-automtls", "grpc", true}}

type benchChannel struct {
	name, ch string
	autoMTLS bool
}

func benchConfig(autoMTLS bool) host.Config {
	return host.Config{Env: append(host.PluginEnv(func(string) string { return "" }), "GOMAXPROCS=1"), AutoMTLS: autoMTLS}
}

// BenchmarkLaunch starts a built-in plugin (process, handshake, Describe,
// Configure) and stops it; "direct-known" skips Describe, as tlspin's
// launch does for tlspin-builtins (Spec.Known).
func BenchmarkLaunch(b *testing.B) {
	pin := md5hex(newCert(b))
	channels := append(benchChannels, benchChannel{"direct-known", "direct", false})
	for _, bc := range channels {
		b.Run(bc.name, func(b *testing.B) {
			spec := md5Spec(b, bc.ch, verify.Options{"pin": {pin}})
			if bc.name == "direct-known" {
				d, err := host.Describe(context.Background(), spec, benchConfig(false))
				if err != nil {
					b.Fatal(err)
				}
				spec.Known = &host.Known{Description: *d}
			}
			for b.Loop() {
				p, err := host.Start(context.Background(), spec, benchConfig(bc.autoMTLS))
				if err != nil {
					b.Fatal(err)
				}
				p.Close()
			}
		})
	}
}

// BenchmarkVerify makes one uncached Verify call through a running plugin.
// Besides the host's time and allocations, it reports the plugin
// process's CPU time per call (plugin-cpu-ns/op, on Linux), which the
// host's figures do not show: its own decoding, verifying and answering,
// and its wake-ups.
func BenchmarkVerify(b *testing.B) {
	c := newCert(b)
	req := &verify.Request{PeerChain: [][]byte{c}, Side: verify.ClientVerifiesServer, RemoteAddr: "127.0.0.1:443"}
	for _, bc := range benchChannels {
		b.Run(bc.name, func(b *testing.B) {
			p, err := host.Start(context.Background(), md5Spec(b, bc.ch, verify.Options{"pin": {md5hex(c)}}), benchConfig(bc.autoMTLS))
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			b.ReportAllocs()
			before, cpuErr := bench.ProcessCPU(p.Pid())
			for b.Loop() {
				v, err := p.Verify(context.Background(), req)
				if err != nil || !v.Allow {
					b.Fatalf("%+v, %v", v, err)
				}
			}
			after, err := bench.ProcessCPU(p.Pid())
			if cpuErr == nil && err == nil {
				b.ReportMetric(float64((after-before).Nanoseconds())/float64(b.N), "plugin-cpu-ns/op")
			}
		})
	}
}
