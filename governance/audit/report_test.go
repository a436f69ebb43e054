package audit

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/governance/retention"
	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/modules/generation"
	"github.com/stewardhq/steward/policies"
)

func TestMain(m *testing.M) { os.Exit(sqltest.Main(m)) }

// sqlDataMap builds the data map of db from the tables these tests use.
func sqlDataMap(db *bun.DB, engine *policies.Engine) func(context.Context) (*datamap.Map, []datamap.Problem, error) {
	return func(ctx context.Context) (*datamap.Map, []datamap.Problem, error) {
		return datamap.Build(ctx, datamap.Inputs{SQL: db, Policy: engine,
			Sources: []datamap.Source{
				{Module: "generation", Models: (&generation.Module{}).Models()},
				{Module: "retention", Models: []any{(*retention.Run)(nil)}},
				{Module: "audit", Models: Models()},
			}})
	}
}

func levels(c Check) []string {
	var out []string
	for _, f := range c.Findings {
		out = append(out, f.Level+": "+f.What+" @ "+f.Where)
	}
	return out
}

func wantStatus(t *testing.T, c Check, status string) {
	t.Helper()
	if c.Status != status {
		t.Fatalf("%s: status %s, want %s (%s); findings %v", c.Name, c.Status, status, c.Summary, levels(c))
	}
}

// runCheck runs a check over what db holds now, wants status from it and
// returns it.
func runCheck(t *testing.T, db bun.IDB, check func(context.Context, bun.IDB) (Check, error), status string) Check {
	t.Helper()
	c, err := check(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, c, status)
	return c
}

func TestDataMapCheck(t *testing.T) {
	engine := authtest.Engine(t)
	tax := engine.Taxonomy()
	email := tax["user.contact.email"]
	email.Key = "user.contact.email"
	dm := &datamap.Map{
		Categories: map[string]policies.Category{email.Key: email},
		Entries:    []datamap.Entry{{Field: datamap.Field{Store: "sql", Table: "users", Column: "email", Category: email.Key}}},
	}
	stored := policies.ChecklistItem{Section: 2, Item: "email address", Categories: []string{"user.contact.email"}}
	reasoned := policies.ChecklistItem{Section: 2, Item: "postal address", Categories: []string{"user.contact.address"}, Reason: "never asked for"}
	unstored := policies.ChecklistItem{Section: 3, Item: "phone number", Categories: []string{"user.contact.phone_number"}}
	untagged := datamap.Problem{Store: "sql", Table: "users", Column: "nickname", Rule: "untagged-column", Message: "no data category"}
	tests := []struct {
		name      string
		problems  []datamap.Problem
		checklist []policies.ChecklistItem
		status    string
		where     string
	}{
		{name: "covered", checklist: []policies.ChecklistItem{stored, reasoned}, status: StatusOK},
		{name: "untagged column", problems: []datamap.Problem{untagged}, checklist: []policies.ChecklistItem{stored}, status: StatusFinding, where: "sql users.nickname"},
		{name: "policy item not stored", checklist: []policies.ChecklistItem{stored, unstored}, status: StatusFinding, where: "privacy policy section 3.phone number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DataMapCheck(dm, tt.problems, tt.checklist)
			wantStatus(t, c, tt.status)
			if tt.where != "" && (len(c.Findings) != 1 || c.Findings[0].Where != tt.where) {
				t.Fatalf("findings %v, want one at %q", levels(c), tt.where)
			}
		})
	}
}

func TestRetentionCheck(t *testing.T) {
	ctx := context.Background()
	engine := authtest.Engine(t)
	now := time.Now().UTC().Truncate(time.Second)
	const interval = 24 * time.Hour
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		clock := now
		mod, err := retention.New(retention.Config{Interval: interval}, retention.Deps{DB: db,
			DataMap: sqlDataMap(db, engine), Now: func() time.Time { return clock }})
		if err != nil {
			t.Fatal(err)
		}

		c, err := RetentionCheck(ctx, db, mod, interval, clock)
		if err != nil {
			t.Fatal(err)
		}
		// Nothing is overdue, but no real run ever happened.
		wantStatus(t, c, StatusWarning)
		if len(c.Findings) != 1 || c.Findings[0].What != "retention never ran" {
			t.Fatalf("findings %v, want only that retention never ran", levels(c))
		}

		old := generation.SafetyResult{ID: "s_old", UserID: "u1", Allowed: true, Flags: "[]", CreatedAt: now.AddDate(0, 0, -181)}
		if _, err := db.NewInsert().Model(&old).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		c, err = RetentionCheck(ctx, db, mod, interval, clock)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, c, StatusFinding)
		var found bool
		for _, f := range c.Findings {
			if f.Level == StatusFinding && f.Where == "sql prompt_safety_results" && strings.Contains(f.Detail, "1 rows") {
				found = true
			}
		}
		if !found {
			t.Fatalf("findings %v, want the expired safety result", levels(c))
		}
		// The audit's previews removed nothing and stored nothing.
		if n, err := db.NewSelect().Model((*generation.SafetyResult)(nil)).Count(ctx); err != nil || n != 1 {
			t.Fatalf("safety results after the audit: %d, %v", n, err)
		}
		if n, err := db.NewSelect().Model((*retention.Run)(nil)).Count(ctx); err != nil || n != 0 {
			t.Fatalf("retention runs stored by the audit: %d, %v", n, err)
		}

		// A real run removes the row and counts as the last run.
		if _, err := mod.Run(ctx, false); err != nil {
			t.Fatal(err)
		}
		c, err = RetentionCheck(ctx, db, mod, interval, clock)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, c, StatusOK)

		// Three days later, with a daily interval, the run is overdue.
		clock = now.Add(3 * interval)
		c, err = RetentionCheck(ctx, db, mod, interval, clock)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, c, StatusWarning)
		if len(c.Findings) != 1 || c.Findings[0].What != "retention run overdue" {
			t.Fatalf("findings %v, want the overdue run", levels(c))
		}
		if n, err := db.NewSelect().Model((*retention.Run)(nil)).Count(ctx); err != nil || n != 1 {
			t.Fatalf("retention runs: %d, %v; want the one real run", n, err)
		}
	})
}

func TestDeadlineCheck(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	tests := []struct {
		name   string
		status string
		due    time.Duration
		want   string
	}{
		{name: "overdue and received", status: privacy.StatusReceived, due: -time.Hour, want: StatusFinding},
		{name: "overdue and failed", status: privacy.StatusFailed, due: -48 * time.Hour, want: StatusFinding},
		{name: "failed long before it is due", status: privacy.StatusFailed, due: 25 * 24 * time.Hour, want: StatusFinding},
		{name: "due in three days", status: privacy.StatusProcessing, due: 72 * time.Hour, want: StatusWarning},
		{name: "due in three weeks", status: privacy.StatusVerified, due: 21 * 24 * time.Hour, want: StatusOK},
		{name: "late but completed", status: privacy.StatusCompleted, due: -time.Hour, want: StatusOK},
		{name: "late but rejected", status: privacy.StatusRejected, due: -time.Hour, want: StatusOK},
	}
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		c, err := DeadlineCheck(ctx, db, now)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, c, StatusOK)
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id := "pr_" + string(rune('a'+i))
				r := privacy.Request{ID: id, Type: privacy.TypeAccess, Status: tt.status, UserID: "u1", Email: "a@example.com",
					RequestedBy: "u1", ReceivedAt: now.Add(-20 * 24 * time.Hour), DueAt: now.Add(tt.due), UpdatedAt: now, PolicyRevision: "r"}
				if _, err := db.NewInsert().Model(&r).Exec(ctx); err != nil {
					t.Fatal(err)
				}
				defer func() {
					if _, err := db.NewDelete().Model(&r).WherePK().Exec(ctx); err != nil {
						t.Fatal(err)
					}
				}()
				c, err := DeadlineCheck(ctx, db, now)
				if err != nil {
					t.Fatal(err)
				}
				wantStatus(t, c, tt.want)
				if tt.want != StatusOK && c.Findings[0].Where != "privacy_requests/"+id {
					t.Fatalf("finding at %q", c.Findings[0].Where)
				}
				for _, f := range c.Findings {
					if strings.Contains(f.Detail+f.Where, "a@example.com") {
						t.Fatal("the finding names the subject's email")
					}
				}
			})
		}
	})
}

func TestLogChecks(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	insert := func(t *testing.T, db *bun.DB, rows any) {
		t.Helper()
		if _, err := db.NewInsert().Model(rows).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		check func(context.Context, bun.IDB) (Check, error)
		plant func(t *testing.T, db *bun.DB)
		spoil func(t *testing.T, db *bun.DB)
		where string
	}{
		{
			name:  "admin log",
			check: AdminLogCheck,
			plant: func(t *testing.T, db *bun.DB) {
				for i, action := range []string{"user.role.update", "user.token.create", "privacy.request.extend"} {
					if _, err := adminlog.Append(ctx, db, adminlog.Entry{ActorID: "admin1", Action: action, TargetID: "u" + string(rune('1'+i))}); err != nil {
						t.Fatal(err)
					}
				}
			},
			spoil: func(t *testing.T, db *bun.DB) {
				if _, err := db.ExecContext(ctx, "UPDATE admin_log SET action = 'user.role.read' WHERE seq = 2"); err != nil {
					t.Fatal(err)
				}
			},
			where: "admin_log seq 2",
		},
		{
			name:  "decision log",
			check: DecisionLogCheck,
			plant: func(t *testing.T, db *bun.DB) {
				insert(t, db, &[]sqlstore.DecisionRecord{
					{ID: "d1", DecidedAt: now, Policy: "data.steward.access", Revision: "rev1", InputDigest: "ab12", Result: map[string]any{"allow": true}},
					{ID: "d2", DecidedAt: now, Policy: "data.steward.retention", Revision: "rev1", InputDigest: "cd34", Result: map[string]any{}},
				})
			},
			spoil: func(t *testing.T, db *bun.DB) {
				insert(t, db, &sqlstore.DecisionRecord{ID: "d3", DecidedAt: now, Policy: "data.steward.erasure", Revision: "rev1", Result: map[string]any{}})
			},
			where: "decision_log policy data.steward.erasure",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
				tt.plant(t, db)
				runCheck(t, db, tt.check, StatusOK)
				tt.spoil(t, db)
				c := runCheck(t, db, tt.check, StatusFinding)
				if c.Findings[0].Where != tt.where {
					t.Fatalf("finding at %q, want %q", c.Findings[0].Where, tt.where)
				}
			})
		})
	}
}

func TestRecordCheck(t *testing.T) {
	ctx := context.Background()
	engine := authtest.Engine(t)
	db := sqltest.SQLite(t)
	dm, _, err := sqlDataMap(db, engine)(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := policies.ProcessingFacts()
	if err != nil {
		t.Fatal(err)
	}
	proc, err := datamap.ParseProcessing(raw)
	if err != nil {
		t.Fatal(err)
	}
	c := RecordCheck(dm, proc)
	wantStatus(t, c, StatusOK)
	if !strings.Contains(c.Summary, "bytes") {
		t.Fatalf("summary %q does not give the record's length", c.Summary)
	}
}

func TestRender(t *testing.T) {
	rep := Report{GeneratedAt: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), PolicyRevision: "rev1", Checks: []Check{
		newCheck("consent_proof", "1 current choice", []Finding{{Level: StatusFinding, What: "consent without proof",
			Where: "consent_state/<s1>", Detail: `<script>alert("x")</script>`}}),
		newCheck(CheckAdminLog, "3 entries verified", nil),
	}}
	t.Run("html", func(t *testing.T) {
		var buf bytes.Buffer
		if err := Render(&buf, rep, FormatHTML); err != nil {
			t.Fatal(err)
		}
		page := buf.String()
		for _, want := range []string{"<!DOCTYPE html>", "consent_proof", "admin_log_integrity", "&lt;script&gt;", "consent_state/&lt;s1&gt;", "Findings:"} {
			if !strings.Contains(page, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		for _, bad := range []string{"<script", "src=", "href=", "@import", "url("} {
			if strings.Contains(page, bad) {
				t.Errorf("page holds %q: not escaped or not self-contained", bad)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		var buf bytes.Buffer
		if err := Render(&buf, rep, FormatJSON); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"clean": false`, `"status": "finding"`, `"findings": []`, `"policy_revision": "rev1"`} {
			if !strings.Contains(buf.String(), want) {
				t.Errorf("json lacks %q", want)
			}
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		if err := Render(&bytes.Buffer{}, rep, "xml"); err == nil {
			t.Fatal("xml rendered")
		}
	})
}
