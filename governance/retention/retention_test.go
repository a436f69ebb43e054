package retention

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/modules/generation"
	"github.com/stewardhq/steward/policies"
)

func TestMain(m *testing.M) { chtest.MainWith(m, sqltest.Main) }

type eventRow struct {
	ID string `ch:"event_id"`
	IP string `ch:"ip_truncated"`
}

// dataMapOf is the data map the module reads: the tables of db, and of w
// when it is not nil, as the given modules and the retention runs declare
// them.
func dataMapOf(engine *policies.Engine, db *bun.DB, w warehouse.Warehouse, modules ...datamap.Source) func(context.Context) (*datamap.Map, []datamap.Problem, error) {
	sources := append(modules, datamap.Source{Module: "retention", Models: []any{(*Run)(nil)}})
	return func(ctx context.Context) (*datamap.Map, []datamap.Problem, error) {
		return datamap.Build(ctx, datamap.Inputs{SQL: db, Warehouse: w, Policy: engine, Sources: sources})
	}
}

// TestRunRemovesExactlyWhatExpired moves the clock and checks that a run
// deletes the prompt safety results older than 180 days and the events
// older than 13 months with the visits (touches) they made, clears the IP
// of events older than 30 days, and nothing else.
func TestRunRemovesExactlyWhatExpired(t *testing.T) {
	ctx := context.Background()
	engine := authtest.Engine(t)
	w := chtest.Embedded(t)
	// The time column of events, as the warehouse migration tags it.
	if err := w.Exec(ctx, "ALTER TABLE events COMMENT COLUMN event_time 'user.behavior.timestamp,collected'"); err != nil {
		t.Fatal(err)
	}
	// The clock runs two years ahead: the warehouse's own TTLs act on the
	// real time, and must not remove the rows before the run does.
	now := time.Now().UTC().AddDate(2, 0, 0).Truncate(time.Second)
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		dataMap := dataMapOf(engine, db, w, datamap.Source{Module: "generation", Models: (&generation.Module{}).Models()})
		mod, err := New(Config{}, Deps{DB: db, Warehouse: w, DataMap: dataMap, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		results := []generation.SafetyResult{
			{ID: "s_old", UserID: "u1", Allowed: true, Flags: "[]", CreatedAt: now.AddDate(0, 0, -181)},
			{ID: "s_new", UserID: "u1", Allowed: true, Flags: "[]", CreatedAt: now.AddDate(0, 0, -179)},
		}
		if _, err := db.NewInsert().Model(&results).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"events", "touches"} {
			if err := w.Exec(ctx, "TRUNCATE TABLE "+table); err != nil {
				t.Fatal(err)
			}
		}
		cols := []string{"event_id", "event_time", "received_at", "event_type", "event_name", "visitor_id", "ip_truncated"}
		rows := [][]any{
			{"e_14m", now.AddDate(0, -14, 0), now, "page_view", "page_view", "v1", "203.0.113.0"},
			{"e_2m", now.AddDate(0, -2, 0), now, "page_view", "page_view", "v1", "203.0.113.0"},
			{"e_1d", now.AddDate(0, 0, -1), now, "page_view", "page_view", "v1", "203.0.113.0"},
		}
		if err := w.Insert(ctx, "events", cols, rows); err != nil {
			t.Fatal(err)
		}

		preview, err := mod.Preview(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := db.NewSelect().Model((*Run)(nil)).Count(ctx); err != nil || n != 0 {
			t.Fatalf("a preview stored %d runs (%v); it stores none", n, err)
		}
		dry, err := mod.Run(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if preview.RowsAffected != dry.RowsAffected || len(preview.Items) != len(dry.Items) {
			t.Errorf("a preview counts %d rows in %d items, the dry run %d in %d",
				preview.RowsAffected, len(preview.Items), dry.RowsAffected, len(dry.Items))
		}
		if n, err := db.NewSelect().Model((*Run)(nil)).Count(ctx); err != nil || n != 1 {
			t.Fatalf("a dry run stored %d runs (%v); it stores its report", n, err)
		}
		if dry.RowsAffected != 4 {
			t.Errorf("dry run counts %d rows, want 4 (a safety result, an event, its visit, an IP): %+v", dry.RowsAffected, dry.Items)
		}
		var left int64
		if left, err = db.NewSelect().Model((*generation.SafetyResult)(nil)).Count(ctx); err != nil || left != 2 {
			t.Fatalf("dry run changed safety results: %d left, %v", left, err)
		}

		rep, err := mod.Run(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if rep.RowsAffected != 4 {
			t.Errorf("run affected %d rows, want 4: %+v", rep.RowsAffected, rep.Items)
		}
		var ids []string
		if err := db.NewSelect().Model((*generation.SafetyResult)(nil)).Column("id").Scan(ctx, &ids); err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != "s_new" {
			t.Errorf("safety results left %v, want [s_new]", ids)
		}
		var events []eventRow
		if err := w.Select(ctx, &events, "SELECT event_id, ip_truncated FROM events ORDER BY event_time"); err != nil {
			t.Fatal(err)
		}
		want := []eventRow{{"e_2m", ""}, {"e_1d", "203.0.113.0"}}
		if len(events) != len(want) || events[0] != want[0] || events[1] != want[1] {
			t.Errorf("events left %+v, want %+v", events, want)
		}
		var visits []struct {
			Session string `ch:"session_id"`
		}
		if err := w.Select(ctx, &visits, "SELECT session_id FROM touches FINAL ORDER BY touch_time"); err != nil {
			t.Fatal(err)
		}
		if len(visits) != 2 || visits[0].Session != "e_2m" || visits[1].Session != "e_1d" {
			t.Errorf("visits left %+v, want those of e_2m and e_1d", visits)
		}
		var ttl []struct {
			Q string `ch:"q"`
		}
		if err := w.Select(ctx, &ttl, "SELECT create_table_query AS q FROM system.tables WHERE database = currentDatabase() AND name = 'events'"); err != nil {
			t.Fatal(err)
		}
		if len(ttl) != 1 || !strings.Contains(ttl[0].Q, "toIntervalMonth(13)") || !strings.Contains(ttl[0].Q, "toIntervalDay(30)") {
			t.Errorf("events TTLs not in step with the rules: %v", ttl)
		}
		again, err := mod.Run(ctx, false)
		if err != nil || again.RowsAffected != 0 {
			t.Errorf("second run affected %d rows (%v), want 0", again.RowsAffected, err)
		}
		reports, err := mod.Reports(ctx, 10)
		if err != nil || len(reports) != 3 || reports[0].ID != again.ID || !reports[2].DryRun {
			t.Errorf("stored reports %d, %v", len(reports), err)
		}
	})
}

// TestSchedulerRuns starts the scheduler with a short interval and waits
// for a stored report.
func TestSchedulerRuns(t *testing.T) {
	ctx := context.Background()
	engine := authtest.Engine(t)
	db := sqltest.SQLite(t)
	dataMap := dataMapOf(engine, db, nil)
	mod, err := New(Config{Interval: 20 * time.Millisecond}, Deps{DB: db, DataMap: dataMap})
	if err != nil {
		t.Fatal(err)
	}
	if err := mod.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		reports, err := mod.Reports(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(reports) == 1 && !reports[0].DryRun && reports[0].PolicyRevision == engine.Revision() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no scheduled run within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := mod.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// leading is a process that believes it leads.
type leading bool

func (l leading) Leading() bool { return bool(l) }

// TestScheduledRunsOnceAcrossProcesses runs the schedulers of three
// processes on one PostgreSQL database: two believe they lead (as during a
// hand-over), one follows. Runs still come one Interval apart.
func TestScheduledRunsOnceAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	engine := authtest.Engine(t)
	db := sqltest.Postgres(t)
	dataMap := dataMapOf(engine, db, nil)
	const interval = 300 * time.Millisecond
	for _, l := range []leading{true, true, false} {
		mod, err := New(Config{Interval: interval}, Deps{DB: db, DataMap: dataMap, Leader: l})
		if err != nil {
			t.Fatal(err)
		}
		if err := mod.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = mod.Stop(context.Background()) })
	}
	var runs []Run
	deadline := time.Now().Add(3 * time.Minute)
	for len(runs) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d scheduled runs within 3 minutes, want 4", len(runs))
		}
		time.Sleep(50 * time.Millisecond)
		runs = nil
		if err := db.NewSelect().Model(&runs).Column("id", "started_at").Where("dry_run = false").Order("started_at").Scan(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < len(runs); i++ {
		if gap := runs[i].StartedAt.Sub(runs[i-1].StartedAt); gap < interval {
			t.Errorf("runs %d and %d started %s apart, less than the interval %s", i-1, i, gap, interval)
		}
	}
}
