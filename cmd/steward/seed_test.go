package main

import (
	"context"
	"testing"

	"github.com/stewardhq/steward/governance/seed"
)

// TestSeedFillsEveryTable seeds people and checks every table with a
// subject column got their rows, and the warehouse their events.
func TestSeedFillsEveryTable(t *testing.T) {
	ctx := context.Background()
	srv := embedded
	sd, err := srv.newSeeder(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	p := seed.Typical()
	p.Events = 50
	people, sum, err := sd.People(ctx, 3, p)
	if err != nil {
		t.Fatal(err)
	}
	dm, _, err := srv.dataMap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Events != 150 || sum.Files != 3 {
		t.Errorf("summary %+v", sum)
	}
	for _, pp := range people {
		who := person{userID: pp.UserID, email: pp.Email, visitors: pp.VisitorIDs}
		for table, n := range sum.Rows {
			if got := subjectCount(t, ctx, srv, dm, table, who); got < int64(n/3) {
				t.Errorf("%s: %d rows of a seeded person, want %d", table, got, n/3)
			}
		}
		if got := subjectCount(t, ctx, srv, dm, "events", who); got != 50 {
			t.Errorf("events of a seeded person: %d, want 50", got)
		}
	}
	for _, table := range []string{"users", "generations", "billing_orders", "support_tickets", "support_messages"} {
		if sum.Rows[table] == 0 {
			t.Errorf("no %s seeded", table)
		}
	}
}
