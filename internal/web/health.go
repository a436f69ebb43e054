package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/errs"
)

// HealthReport is the body of GET /healthz.
type HealthReport struct {
	// Status is "ok" when every check passed and "degraded" otherwise.
	Status         string                 `json:"status"`
	Version        string                 `json:"version"`
	PolicyRevision string                 `json:"policy_revision"`
	Checks         map[string]CheckResult `json:"checks"`
}

// CheckResult is the outcome of one health check.
type CheckResult struct {
	// Status is "ok" or "error".
	Status string `json:"status"`
	// Error says why the check failed, in terms safe to publish: a timeout,
	// the check's client-safe detail (see errs.E), or "unavailable". The
	// full error, which may name hosts or credentials, is only logged.
	Error string `json:"error,omitempty"`
}

func (s *server) healthz(c *fiber.Ctx) error {
	report := s.checkHealth(c.UserContext())
	status := http.StatusOK
	if report.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(status).JSON(report)
}

// checkHealth runs every check concurrently, each under its own timeout,
// and updates the steward_store_up gauge.
func (s *server) checkHealth(ctx context.Context) HealthReport {
	report := HealthReport{
		Status:  "ok",
		Version: s.opts.Version,
		Checks:  make(map[string]CheckResult, len(s.opts.Health)),
	}
	if s.opts.PolicyRevision != nil {
		report.PolicyRevision = s.opts.PolicyRevision()
	}

	results := make([]CheckResult, len(s.opts.Health))
	var wg sync.WaitGroup
	for i, hc := range s.opts.Health {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.runCheck(ctx, hc)
		}()
	}
	wg.Wait()

	for i, hc := range s.opts.Health {
		report.Checks[hc.Name] = results[i]
		up := 1.0
		if results[i].Status != "ok" {
			up = 0
			report.Status = "degraded"
		}
		s.metrics.storeUp.WithLabelValues(hc.Name).Set(up)
	}
	return report
}

func (s *server) runCheck(ctx context.Context, hc HealthCheck) CheckResult {
	timeout := hc.Timeout
	if timeout <= 0 {
		timeout = DefaultHealthTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// The check runs in its own goroutine so that one ignoring its context
	// still cannot hold the probe past the timeout.
	done := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Errorf("health check panicked: %v", v)
			}
		}()
		done <- hc.Check(ctx)
	}()

	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		return CheckResult{Status: "ok"}
	}
	s.logger.LogAttrs(ctx, slog.LevelWarn, "health check failed",
		slog.String("check", hc.Name), slog.Any("error", err))
	msg := errs.Detail(err)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		msg = fmt.Sprintf("timed out after %s", timeout)
	case msg == "":
		msg = "unavailable"
	}
	return CheckResult{Status: "error", Error: msg}
}
