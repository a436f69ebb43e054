package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stewardhq/steward/governance/privacy"
)

// requestsCollector exports the privacy requests by type and status as
// steward_privacy_requests, read from the SQL store at each scrape, so a
// failed request shows on a dashboard whichever process failed it.
type requestsCollector struct {
	privacy *privacy.Module
	desc    *prometheus.Desc
	failed  *prometheus.Desc
}

func newRequestsCollector(p *privacy.Module) *requestsCollector {
	return &requestsCollector{
		privacy: p,
		desc: prometheus.NewDesc("steward_privacy_requests", "Privacy requests by type and status.",
			[]string{"type", "status"}, nil),
		failed: prometheus.NewDesc("steward_privacy_requests_failed", "Privacy requests that failed and wait for an operator to retry them.",
			nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *requestsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	ch <- c.failed
}

// Collect implements prometheus.Collector. A store that cannot be read
// yields an invalid metric, which the scrape reports as an error.
func (c *requestsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.privacy.Counts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	var failed int64
	for _, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n.Count), n.Type, n.Status)
		if n.Status == privacy.StatusFailed {
			failed += n.Count
		}
	}
	ch <- prometheus.MustNewConstMetric(c.failed, prometheus.GaugeValue, float64(failed))
}
