package web

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the collectors the platform keeps in the registry.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	storeUp  *prometheus.GaugeVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	return &metrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status.",
		}, []string{"method", "route", "status"})),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "steward_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by method and route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"})),
		storeUp: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "steward_store_up",
			Help: "1 when the last health check of a store passed, 0 when it failed.",
		}, []string{"store"})),
	}
}

// register adds c to reg, or returns the collector already registered under
// the same description, so that several apps built on one registry (as in
// tests) share their metrics instead of panicking.
func register[T prometheus.Collector](reg *prometheus.Registry, c T) T {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(T); ok {
			return existing
		}
	}
	// Only a programming error (a clashing metric name) gets here.
	panic(fmt.Sprintf("web: register metric: %v", err))
}
