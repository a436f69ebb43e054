package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/governance/seed"
	"github.com/stewardhq/steward/internal/sqlstore"
)

// TestSeedFillsEveryTable seeds people and checks every table with a
// subject column got their rows, and the warehouse their events: the
// consented ones under their ids, the others linked to no one, as the
// consent gate would have stored them.
func TestSeedFillsEveryTable(t *testing.T) {
	ctx := context.Background()
	srv := embedded
	sd, err := srv.newSeeder(7)
	if err != nil {
		t.Fatal(err)
	}
	p := seed.Typical()
	p.Events = 50
	people, sum, err := sd.People(ctx, 3, p)
	if err != nil {
		t.Fatal(err)
	}
	dm := liveDataMap(t)
	if sum.Events != 150 || sum.Files != 3 || sum.People != 3 {
		t.Errorf("summary %+v", sum)
	}
	// The seed fills the SQL store's tables; a table of the same name in
	// the warehouse (a copy kept for attribution) is not theirs to count.
	sqlMap := &datamap.Map{}
	for _, e := range dm.Entries {
		if e.Store == datamap.StoreSQL {
			sqlMap.Entries = append(sqlMap.Entries, e)
		}
	}
	for _, pp := range people {
		who := person{userID: pp.UserID, email: pp.Email, visitors: pp.VisitorIDs}
		for table, n := range sum.Rows {
			if got := subjectCount(t, ctx, srv, sqlMap, table, who); got < n/3 {
				t.Errorf("%s: %d rows of a seeded person, want %d", table, got, n/3)
			}
		}
		// With 30% of events unconsented, some of the 50 are the person's
		// and some belong to no one.
		if got := subjectCount(t, ctx, srv, dm, "events", who); got == 0 || got == 50 {
			t.Errorf("events of a seeded person: %d of 50, want the consented share", got)
		}
		var unconsented []struct {
			N uint64 `ch:"n"`
		}
		if err := srv.stores.warehouse.Select(ctx, &unconsented, "SELECT count() AS n FROM events WHERE (visitor_id = {v:String} OR user_id = {u:String}) AND NOT has(consent_purposes, 'analytics')",
			warehouse.Named("v", pp.VisitorIDs[0]), warehouse.Named("u", pp.UserID)); err != nil {
			t.Fatal(err)
		}
		if unconsented[0].N != 0 {
			t.Errorf("%d events sent without analytics consent carry a seeded person's ids", unconsented[0].N)
		}
	}
	for _, table := range []string{"users", "generations", "billing_orders", "support_tickets", "support_messages"} {
		if sum.Rows[table] == 0 {
			t.Errorf("no %s seeded", table)
		}
	}
	// Every seeded choice points at a proof that exists, read from the
	// store itself, as the DPO's consent check reads it.
	for _, pp := range people {
		var orphans int
		err := srv.stores.sql.NewRaw(`SELECT count(*) FROM consent_state s
			WHERE (s.user_id = ? OR s.visitor_id IN (?)) AND NOT EXISTS (SELECT 1 FROM consent_log l WHERE l.id = s.proof_id)`,
			pp.UserID, bun.In(pp.VisitorIDs)).Scan(ctx, &orphans)
		if err != nil {
			t.Fatal(err)
		}
		if orphans != 0 {
			t.Errorf("%d consent choices of a seeded person point at no proof", orphans)
		}
	}
}

// TestSeedDefaultEvents checks the events per person a seed makes when
// --events is not given: the profile's, fewer when the total would pass
// the budget, and never none unless the profile has none.
func TestSeedDefaultEvents(t *testing.T) {
	tests := []struct {
		name           string
		profile, users int
		want           int
	}{
		{"few typical people", 200, 100, 200},
		{"at the budget", 200, defaultEventBudget / 200, 200},
		{"a hundred thousand typical people", 200, 100000, 20},
		{"one heavy subject", seed.Heavy().Events, 1, seed.Heavy().Events},
		{"more people than the budget has events", 200, 2 * defaultEventBudget, 1},
		{"a profile without events", 0, 100000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultEvents(tt.profile, tt.users); got != tt.want {
				t.Errorf("defaultEvents(%d, %d) = %d, want %d", tt.profile, tt.users, got, tt.want)
			}
		})
	}
}

// TestSeedCommandTwice runs `steward seed` twice on one data dir, as its
// own process and with the same default random seed, which used to make
// the same keys again: both runs succeed, and every table holds, counted
// in the SQL store itself, the rows both runs said they made.
func TestSeedCommandTwice(t *testing.T) {
	dir := t.TempDir()
	mustRunChild(t, dir, "migrate up")
	const users = 100
	want := map[string]int64{}
	for run := range 2 {
		out := mustRunChild(t, dir, fmt.Sprintf("seed --users %d --events 2", users))
		printed := map[string]int64{}
		for line := range strings.Lines(out) {
			var table string
			var n int64
			if _, err := fmt.Sscan(line, &table, &n); err != nil {
				t.Fatalf("seed run %d printed %q: %v", run, line, err)
			}
			printed[table] = n
		}
		if printed["users"] != users || printed["events"] != 2*users || printed["files"] != users {
			t.Fatalf("seed run %d printed %v", run, printed)
		}
		for table, n := range printed {
			if table != "events" && table != "files" {
				want[table] += n
			}
		}
	}
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for table, n := range want {
		var got int64
		if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM "+table).Scan(&got); err != nil {
			t.Fatal(err)
		}
		// Uploads add real assets to the seeded ones.
		if table == "assets" {
			n += 2 * users
		}
		if got != n {
			t.Errorf("%s: %d rows after two runs, want %d", table, got, n)
		}
	}
}
