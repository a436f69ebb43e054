package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/web"
)

func TestHealthz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error {
		return errors.New("dial tcp 10.0.0.5:9000: connect: connection refused (user=steward password=hunter2)")
	}
	busy := func(context.Context) error {
		return errs.Wrap(errors.New("too many parts"), errs.ErrUnavailable, "merging parts")
	}
	// hang ignores its context, as a stuck driver call might.
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	stuck := func(context.Context) error { <-hang; return nil }
	// The checks that answer at once get a generous timeout, so that a
	// slow, busy machine never turns their answer into a timeout.
	const generous = time.Minute

	tests := []struct {
		name       string
		checks     []web.HealthCheck
		wantStatus int
		wantReport string
		wantChecks map[string]web.CheckResult
		wantUp     map[string]float64
	}{
		{
			name:       "all ok",
			checks:     []web.HealthCheck{{Name: "sql", Check: ok, Timeout: generous}, {Name: "warehouse", Check: ok, Timeout: generous}},
			wantStatus: 200,
			wantReport: "ok",
			wantChecks: map[string]web.CheckResult{"sql": {Status: "ok"}, "warehouse": {Status: "ok"}},
			wantUp:     map[string]float64{"sql": 1, "warehouse": 1},
		},
		{
			name: "failing checks",
			checks: []web.HealthCheck{
				{Name: "sql", Check: ok, Timeout: generous},
				{Name: "warehouse", Check: down, Timeout: generous},
				{Name: "policy", Check: busy, Timeout: generous},
				{Name: "spool", Check: stuck, Timeout: 20 * time.Millisecond},
			},
			wantStatus: 503,
			wantReport: "degraded",
			wantChecks: map[string]web.CheckResult{
				"sql":       {Status: "ok"},
				"warehouse": {Status: "error", Error: "unavailable"},
				"policy":    {Status: "error", Error: "merging parts"},
				"spool":     {Status: "error", Error: "timed out after 20ms"},
			},
			wantUp: map[string]float64{"sql": 1, "warehouse": 0, "policy": 0, "spool": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			app, logs := newApp(t, web.Options{
				Version:        "1.2.3",
				Registry:       reg,
				Health:         tt.checks,
				PolicyRevision: func() string { return "rev-7" },
			})
			r := get(t, app, "/healthz")
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			var report web.HealthReport
			if err := json.Unmarshal(r.body, &report); err != nil {
				t.Fatal(err)
			}
			if report.Status != tt.wantReport || report.Version != "1.2.3" || report.PolicyRevision != "rev-7" {
				t.Errorf("report = %+v", report)
			}
			if len(report.Checks) != len(tt.wantChecks) {
				t.Errorf("checks = %+v", report.Checks)
			}
			for name, want := range tt.wantChecks {
				if got := report.Checks[name]; got != want {
					t.Errorf("check %s = %+v, want %+v", name, got, want)
				}
			}
			if strings.Contains(string(r.body), "hunter2") || strings.Contains(string(r.body), "10.0.0.5") {
				t.Errorf("health answer leaks internals: %s", r.body)
			}
			if tt.wantReport == "degraded" && !strings.Contains(logs.String(), "connection refused") {
				t.Errorf("the full failure is not logged:\n%s", logs.String())
			}

			families, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, f := range families {
				if f.GetName() != "steward_store_up" {
					continue
				}
				for _, m := range f.GetMetric() {
					got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
				}
			}
			for store, want := range tt.wantUp {
				if v, ok := got[store]; !ok || v != want {
					t.Errorf("steward_store_up{store=%q} = %v (present %v), want %v", store, v, ok, want)
				}
			}
		})
	}
}

func TestAppsShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, _ := newApp(t, web.Options{Registry: reg})
	b, _ := newApp(t, web.Options{Registry: reg})
	get(t, a, "/healthz")
	get(t, b, "/healthz")
	r := get(t, a, "/metrics")
	if !strings.Contains(string(r.body), `steward_http_requests_total{method="GET",route="/healthz",status="200"} 2`) {
		t.Errorf("shared counter missing:\n%s", r.body)
	}
}
