package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stewardhq/steward/governance/audit"
	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/internal/authz"
)

// TestFailedRequestIsSeen breaks the disk under an access request until
// it fails for good, then finds it where a DPO and an operator look: the
// audit report and /metrics, without reading any log.
func TestFailedRequestIsSeen(t *testing.T) {
	ctx := context.Background()
	env := newHistEnv(t, "sqlite")
	srv := env.srv
	req, err := srv.wired.privacy.FileForOperator(ctx, privacy.TypeAccess, "failing@example.com", "the subject wrote to us")
	if err != nil {
		t.Fatal(err)
	}
	// The packages' folder is a file: every run fails to write one.
	exports := filepath.Join(env.dir, "exports")
	if err := os.RemoveAll(exports); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exports, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if req, err = srv.wired.privacy.Process(ctx, req.ID); req.Status == privacy.StatusFailed {
			break
		}
		if err == nil {
			t.Fatalf("processing succeeded with no folder for packages: %s", req.Status)
		}
	}
	if req.Status != privacy.StatusFailed {
		t.Fatalf("request still %s after repeated failures", req.Status)
	}

	status, body := get(t, srv.app, "/metrics")
	if status != 200 {
		t.Fatalf("/metrics = %d", status)
	}
	for _, want := range []string{`steward_privacy_requests{status="failed",type="access"} 1`, "steward_privacy_requests_failed 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	tok, err := srv.wired.accounts.CreateToken(ctx, "dpo.failing@example.com", authz.RoleDPO)
	if err != nil {
		t.Fatal(err)
	}
	hr := httptest.NewRequest("GET", "/v1/audit/report", nil)
	hr.Header.Set("Authorization", "Bearer "+tok)
	resp, err := srv.app.Test(hr, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep audit.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range rep.Checks {
		for _, f := range c.Findings {
			if f.What == "privacy request failed" && f.Where == "privacy_requests/"+req.ID && f.Level == audit.StatusFinding {
				found = true
				if strings.Contains(f.Detail, "failing@example.com") {
					t.Errorf("the finding names the subject: %s", f.Detail)
				}
			}
		}
	}
	if !found {
		t.Fatalf("the audit does not report the failed request: %s", fmt.Sprint(rep.Checks))
	}
	_ = os.Remove(exports)
}
