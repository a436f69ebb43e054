package warehouse_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/testutil/chtest"
)

// TestPatchPartDeletes checks migration 0009, which lets an erasure's
// DELETE run as a lightweight update: the migration keeps every row and
// column comment, and afterwards a DELETE forced to write patch parts
// removes a subject's rows from every read, those stored before the
// migration as well as after, in every table erasure deletes from. Going
// down keeps the rows too.
func TestPatchPartDeletes(t *testing.T) {
	ctx := t.Context()
	w := chtest.Embedded(t)
	if err := warehouse.MigrateToVersion(ctx, w, 8); err != nil {
		t.Fatal(err)
	}
	at := warehouse.Named("at", testBase)
	insert := func(prefix string) {
		t.Helper()
		for _, user := range []string{"gone", "stays"} {
			id := prefix + "-" + user
			for _, q := range []string{
				`INSERT INTO events (event_id, event_time, received_at, event_type, event_name, user_id, visitor_id, session_id)
				 VALUES ('` + id + `-1', {at:DateTime64(3)}, {at:DateTime64(3)}, 'page_view', 'page_view', '` + user + `', 'v-` + id + `', 's-` + id + `'),
				        ('` + id + `-2', {at:DateTime64(3)}, {at:DateTime64(3)}, 'purchase', 'purchase', '` + user + `', 'v-` + id + `', '')`,
				`INSERT INTO visitor_links (link_id, visitor_id, user_id, linked_at) VALUES ('` + id + `', 'v-` + id + `', '` + user + `', {at:DateTime64(3)})`,
			} {
				if err := w.Exec(ctx, q, at); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// Each insert writes, per account, two events: a page view (a touch)
	// and a purchase (a conversion), and one browser sign-in.
	tables := []string{"events", "touches", "conversions", "visitor_links"}
	perInsert := map[string]uint64{"events": 2, "touches": 1, "conversions": 1, "visitor_links": 1}
	count := func(table, where string) uint64 {
		t.Helper()
		var rows []struct {
			N uint64 `ch:"n"`
		}
		if err := w.Select(ctx, &rows, "SELECT count() AS n FROM "+table+" WHERE "+where); err != nil {
			t.Fatal(err)
		}
		return rows[0].N
	}
	comments := func() string {
		t.Helper()
		var rows []struct {
			C string `ch:"c"`
		}
		if err := w.Select(ctx, &rows, `SELECT concat(table, '.', name, ' ', comment) AS c FROM system.columns
			WHERE database = currentDatabase() AND table IN ('events', 'touches', 'conversions', 'visitor_links')
			ORDER BY table, position`); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, r := range rows {
			fmt.Fprintln(&b, r.C)
		}
		return b.String()
	}

	insert("before")
	wantComments := comments()
	if err := warehouse.Migrate(ctx, w, "up"); err != nil {
		t.Fatal(err)
	}
	if got := comments(); got != wantComments {
		t.Errorf("column comments changed by the migration:\n%s\nwant\n%s", got, wantComments)
	}
	for _, table := range tables {
		if n, want := count(table, "1"), 2*perInsert[table]; n != want {
			t.Errorf("%s: %d rows after the migration, want %d", table, n, want)
		}
	}
	insert("after")

	for _, table := range tables {
		t.Run(table, func(t *testing.T) {
			if err := w.Exec(ctx, "DELETE FROM "+table+" WHERE user_id = 'gone' SETTINGS lightweight_delete_mode = 'lightweight_update_force'"); err != nil {
				t.Fatalf("delete as a lightweight update: %v", err)
			}
			if n := count(table, "user_id = 'gone'"); n != 0 {
				t.Errorf("%d rows of the erased account still read, want 0", n)
			}
			if n := count(table+" FINAL", "user_id = 'gone'"); n != 0 {
				t.Errorf("%d rows of the erased account still read with FINAL, want 0", n)
			}
			if n, want := count(table, "user_id = 'stays'"), 2*perInsert[table]; n != want {
				t.Errorf("%d rows of the other account, want %d", n, want)
			}
			var patches []struct {
				N uint64 `ch:"n"`
			}
			if err := w.Select(ctx, &patches, "SELECT count() AS n FROM system.parts WHERE database = currentDatabase() AND table = {t:String} AND active AND startsWith(name, 'patch-')",
				warehouse.Named("t", table)); err != nil {
				t.Fatal(err)
			}
			if patches[0].N == 0 {
				t.Error("no patch part written: the DELETE ran as a mutation")
			}
		})
	}

	if err := warehouse.MigrateToVersion(ctx, w, 8); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		if n, want := count(table, "1"), 2*perInsert[table]; n != want {
			t.Errorf("%s: %d rows after the migration down, want %d", table, n, want)
		}
	}
	if got := comments(); got != wantComments {
		t.Errorf("column comments changed by the migration down:\n%s\nwant\n%s", got, wantComments)
	}
}
