package proxy

import (
	"crypto/tls"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tlspin/tlspin/internal/server"
)

// Metrics are a proxy's Prometheus metrics, in a registry of their own.
// A nil *Metrics counts nothing.
type Metrics struct {
	reg        *prometheus.Registry
	verifier   string
	handshakes *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	open       prometheus.Gauge
	bytes      *prometheus.CounterVec
	revoked    prometheus.Counter
}

// NewMetrics returns metrics whose handshakes and verifications carry the
// label verifier (the verifiers' names, "none" without any).
func NewMetrics(verifier string) *Metrics {
	if verifier == "" {
		verifier = "none"
	}
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		verifier: verifier,
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlspin_proxy_handshakes_total",
			Help: "TLS handshakes by verifier and outcome: accepted, rejected (by our verifier), no_certificate (the client sent none; no verifier asked), refused (by the peer), failed.",
		}, []string{"verifier", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tlspin_proxy_verify_seconds",
			Help:    "Time the verifiers took to decide on one peer.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}, []string{"verifier"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tlspin_proxy_open_connections",
			Help: "Connections passing bytes now.",
		}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlspin_proxy_bytes_total",
			Help: "Plaintext bytes proxied, by direction: to_target or from_target.",
		}, []string{"direction"}),
		revoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlspin_proxy_revoked_total",
			Help: "Open connections closed because, asked again after a verifier's policy changed, the verifiers no longer allowed the peer.",
		}),
	}
	m.reg.MustRegister(m.handshakes, m.latency, m.open, m.bytes, m.revoked,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// CounterFunc registers a counter read from f when scraped (plugin
// restarts, cache hits: figures the proxy does not own).
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// VerifyConnection wraps f, a tls.Config's VerifyConnection (the
// verifiers' decision), so that every decision is timed.
func (m *Metrics) VerifyConnection(f func(tls.ConnectionState) error) func(tls.ConnectionState) error {
	if m == nil || f == nil {
		return f
	}
	h := m.latency.WithLabelValues(m.verifier)
	return func(cs tls.ConnectionState) error {
		start := time.Now()
		err := f(cs)
		h.Observe(time.Since(start).Seconds())
		return err
	}
}

// watch adds the loop's own figures.
func (m *Metrics) watch(l *server.Loop) {
	gauge := func(name, help string, f func(server.Stats) int) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f(l.Stats())) }))
	}
	counter := func(name, help string, f func(server.Stats) uint64) {
		m.CounterFunc(name, help, func() float64 { return float64(f(l.Stats())) })
	}
	gauge("tlspin_proxy_held_connections", "Connections held by the accept loop, handshakes included.", func(s server.Stats) int { return s.Open })
	gauge("tlspin_proxy_pending_connections", "Connections still in their handshake.", func(s server.Stats) int { return s.Pending })
	counter("tlspin_proxy_accepted_total", "Connections accepted.", func(s server.Stats) uint64 { return s.Accepted })
	counter("tlspin_proxy_evicted_total", "Connections closed to make room, idle the longest of the address holding the most.", func(s server.Stats) uint64 { return s.Evicted })
	counter("tlspin_proxy_handshake_timeouts_total", "Connections not established within the handshake timeout.", func(s server.Stats) uint64 { return s.TimedOut })
	counter("tlspin_proxy_refused_per_ip_total", "Connections refused because their address held too many.", func(s server.Stats) uint64 { return s.RefusedPerIP })
}

func (m *Metrics) handshake(outcome string) {
	if m != nil {
		m.handshakes.WithLabelValues(m.verifier, outcome).Inc()
	}
}

func (m *Metrics) opened() {
	if m != nil {
		m.open.Inc()
	}
}

func (m *Metrics) closed() {
	if m != nil {
		m.open.Dec()
	}
}

func (m *Metrics) revocation() {
	if m != nil {
		m.revoked.Inc()
	}
}

// bytesCounter returns a function adding to the bytes of one direction.
func (m *Metrics) bytesCounter(direction string) func(int) {
	if m == nil {
		return func(int) {}
	}
	c := m.bytes.WithLabelValues(direction)
	return func(n int) { c.Add(float64(n)) }
}
