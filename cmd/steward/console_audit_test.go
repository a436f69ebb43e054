package main

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/modules/generation"
)

// rowCounts counts the rows of every table of the SQL store (SQLite),
// read from its own catalogue: whatever a request writes shows up here,
// whichever module's table it is.
func rowCounts(t *testing.T, db *bun.DB) map[string]int {
	t.Helper()
	ctx := context.Background()
	var tables []string
	if err := db.NewRaw("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").Scan(ctx, &tables); err != nil {
		t.Fatal(err)
	}
	if len(tables) < 20 {
		t.Fatalf("the SQL store lists only %d tables: %v", len(tables), tables)
	}
	out := make(map[string]int, len(tables))
	for _, name := range tables {
		n, err := db.NewSelect().TableExpr("?", bun.Ident(name)).Count(ctx)
		if err != nil {
			t.Fatalf("count %s: %v", name, err)
		}
		out[name] = int(n)
	}
	return out
}

// settledRowCounts is rowCounts once the decision log has written what
// its queue held: the policy engine records each evaluation there, off
// the request path, within its batch interval.
func settledRowCounts(t *testing.T, db *bun.DB) map[string]int {
	t.Helper()
	last := rowCounts(t, db)
	for range 50 {
		time.Sleep(300 * time.Millisecond)
		now := rowCounts(t, db)
		if maps.Equal(now, last) {
			return now
		}
		last = now
	}
	t.Fatal("the SQL store's row counts never settled")
	return nil
}

// changedTables names the tables whose row counts differ, with both
// counts.
func changedTables(before, after map[string]int, except ...string) map[string][2]int {
	out := map[string][2]int{}
	for name := range before {
		if before[name] != after[name] && !slices.Contains(except, name) {
			out[name] = [2]int{before[name], after[name]}
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok && !slices.Contains(except, name) {
			out[name] = [2]int{-1, after[name]}
		}
	}
	return out
}

// TestAuditReadsWriteNothing holds every GET of the audit to writing
// nothing, on a wired server whose SQL store holds a row past its
// retention rule: the report's retention check previews the rule and
// keeps nothing of it, and the row stays. The rows of every table are
// counted directly before and after.
func TestAuditReadsWriteNothing(t *testing.T) {
	ctx := context.Background()
	srv := newPortalServer(t, false, func(c *config.Config) { c.Dev = true })
	db := srv.stores.sql
	tok, err := srv.wired.accounts.CreateToken(ctx, "dana.reads@example.com", "dpo")
	if err != nil {
		t.Fatal(err)
	}
	old := generation.SafetyResult{ID: "s_reads_old", UserID: "u_reads", Allowed: true, Flags: "[]",
		CreatedAt: time.Now().UTC().AddDate(0, 0, -400)}
	if _, err := db.NewInsert().Model(&old).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	dpo := &pageClient{t: t, srv: srv, cookies: map[string]string{}, token: tok}
	reads := []string{"/v1/audit/report", "/v1/audit/datamap", "/v1/audit/runs"}

	// The first reads evaluate the policies for the first time; the
	// engine records those evaluations in decision_log, its evidence of
	// what the policy decided, and answers later reads from its cache.
	// Nothing else may change.
	before := settledRowCounts(t, db)
	for _, path := range reads {
		if resp, body := dpo.get(path); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, body)
		}
	}
	warm := settledRowCounts(t, db)
	if changed := changedTables(before, warm, "decision_log"); len(changed) > 0 {
		t.Fatalf("the first reads of the audit changed rows (table: before, after): %v", changed)
	}

	// From then on, a read changes no table at all.
	for _, path := range reads {
		resp, body := dpo.get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, body)
		}
		after := settledRowCounts(t, db)
		if changed := changedTables(warm, after); len(changed) > 0 {
			t.Errorf("GET %s changed rows (table: before, after): %v", path, changed)
		}
	}
	if warm["prompt_safety_results"] != before["prompt_safety_results"] || warm["retention_runs"] != 0 {
		t.Fatalf("the expired row or a retention run changed: %v", changedTables(before, warm))
	}
}
