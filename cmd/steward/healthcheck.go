package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"
)

// checkHealth GETs /healthz from the server listening on addr. A wildcard
// listen host (0.0.0.0, ::, empty) is reached on loopback.
func checkHealth(ctx context.Context, addr string, timeout time.Duration) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("STEWARD_ADDR %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", url, err)
	}
	defer resp.Body.Close()
	var report struct {
		Status string `json:"status"`
		Checks map[string]struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		} `json:"checks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&report); err != nil {
		return fmt.Errorf("healthcheck %s: answer is not a health report: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK || report.Status != "ok" {
		msg := fmt.Sprintf("status %q (HTTP %d)", report.Status, resp.StatusCode)
		for name, c := range report.Checks {
			if c.Status != "ok" {
				msg += fmt.Sprintf("; %s: %s %s", name, c.Status, c.Error)
			}
		}
		return fmt.Errorf("healthcheck: %s", msg)
	}
	return nil
}
