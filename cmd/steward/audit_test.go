package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/governance/audit"
	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/authtest"
)

// TestAuditReportRoute asks the wired embedded server for the audit
// report with every role. It plants nothing: the report only reads, and
// its retention preview removes and stores nothing
// (TestAuditReadsWriteNothing counts every table around it).
func TestAuditReportRoute(t *testing.T) {
	for _, tt := range authtest.DPOOnly() {
		t.Run("role "+tt.Role, func(t *testing.T) {
			c := &client{t: t}
			if tt.Role != "" {
				c = newClient(t, "audit-"+tt.Role+"@example.com", tt.Role)
			}
			var rep audit.Report
			status := c.json("GET", "/v1/audit/report", nil, &rep)
			if status != tt.Status {
				t.Fatalf("status %d, want %d", status, tt.Status)
			}
			if status != 200 {
				return
			}
			if len(rep.Checks) != 7 || rep.PolicyRevision != embedded.engine.Revision() {
				t.Fatalf("report has %d checks, revision %q", len(rep.Checks), rep.PolicyRevision)
			}
			for _, ch := range rep.Checks {
				if ch.Name == audit.CheckDataMap && ch.Status != audit.StatusOK {
					t.Errorf("the wired server's data map has findings: %+v", ch.Findings)
				}
			}
		})
	}
}

// TestAuditCommand runs `steward audit` as its own process on a fresh
// embedded data dir (SQLite and the embedded engine, migrated): clean,
// exit 0, in both formats, to stdout and to a file; exit 1 once a privacy
// request is overdue, with the report still written.
func TestAuditCommand(t *testing.T) {
	dir := t.TempDir()
	child := func(t *testing.T, args string) (int, string, string) {
		t.Helper()
		return runChild(t, dir, args)
	}
	if code, _, errOut := child(t, "migrate up"); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, errOut)
	}

	t.Run("clean json", func(t *testing.T) {
		code, out, errOut := child(t, "audit")
		var rep audit.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("stdout is not a report: %v\n%s\n%s", err, out, errOut)
		}
		if code != 0 || !rep.Clean {
			t.Fatalf("exit %d, clean %v on a fresh store: %s\n%s", code, rep.Clean, errOut, out)
		}
	})
	t.Run("clean html to a file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.html")
		code, out, errOut := child(t, "audit --format html --out "+path)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if out != "" {
			t.Fatalf("stdout holds %q; the report belongs in the file", out)
		}
		page, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"<!DOCTYPE html>", "Clean: no check has a finding.", "request_deadlines"} {
			if !strings.Contains(string(page), want) {
				t.Errorf("page lacks %q", want)
			}
		}
	})
	t.Run("bad format", func(t *testing.T) {
		code := run(context.Background(), []string{"audit", "--format", "pdf"}, io.Discard, io.Discard, func(string) string { return "" })
		if code != 2 {
			t.Fatalf("exit %d, want 2", code)
		}
	})

	// An erasure request received two months ago, due one month ago and
	// never answered.
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	late := privacy.Request{ID: "pr_cmd_late", Type: privacy.TypeErasure, Status: privacy.StatusReceived, UserID: "u1",
		ReceivedAt: now.AddDate(0, -2, 0), DueAt: now.AddDate(0, -1, 0), UpdatedAt: now, PolicyRevision: "r"}
	_, err = db.NewInsert().Model(&late).Exec(context.Background())
	_ = db.Close()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("finding json", func(t *testing.T) {
		code, out, errOut := child(t, "audit --format json")
		if code != 1 {
			t.Fatalf("exit %d with an overdue request, want 1: %s", code, errOut)
		}
		var rep audit.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("stdout is not a report: %v", err)
		}
		if rep.Clean || !strings.Contains(out, "privacy_requests/pr_cmd_late") {
			t.Fatalf("the report misses the overdue request:\n%s", out)
		}
		if !strings.Contains(errOut, "findings") {
			t.Fatalf("stderr %q does not say why it failed", errOut)
		}
	})
	t.Run("finding html", func(t *testing.T) {
		code, out, _ := child(t, "audit --format html")
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		if !strings.Contains(out, "privacy request overdue") || !strings.Contains(out, "Findings:") {
			t.Fatal("the page misses the overdue request")
		}
	})
}
