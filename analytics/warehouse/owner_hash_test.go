package warehouse_test

import (
	"testing"
	"time"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/testutil/chtest"
)

// TestOwnerHashesFollowTheirIDs checks the owner hashes attribution groups
// by (migrations/clickhouse/0008): an account and a browser never share
// one, even under the same id; the same account or browser hashes alike in
// every table; and clearing an id leaves no hash of it behind.
func TestOwnerHashesFollowTheirIDs(t *testing.T) {
	ctx := t.Context()
	w := chtest.Embedded(t)
	at := warehouse.Named("at", testBase)
	for _, q := range []string{
		`INSERT INTO events (event_id, event_time, received_at, event_type, event_name, user_id, visitor_id, session_id)
		 VALUES ('e1', {at:DateTime64(3)}, {at:DateTime64(3)}, 'page_view', 'page_view', 'same', 'b1', 's1'),
		        ('e2', {at:DateTime64(3)}, {at:DateTime64(3)}, 'page_view', 'page_view', NULL, 'same', 's2'),
		        ('e3', {at:DateTime64(3)}, {at:DateTime64(3)}, 'purchase', 'purchase', 'same', 'b1', ''),
		        ('e4', {at:DateTime64(3)}, {at:DateTime64(3)}, 'purchase', 'purchase', NULL, 'same', ''),
		        ('e5', {at:DateTime64(3)}, {at:DateTime64(3)}, 'purchase', 'purchase', NULL, '', '')`,
		`INSERT INTO visitor_links (link_id, visitor_id, user_id, linked_at) VALUES ('l1', 'same', 'same', {at:DateTime64(3)})`,
	} {
		if err := w.Exec(ctx, q, at); err != nil {
			t.Fatal(err)
		}
	}
	var rows []struct {
		Name string `ch:"name"`
		Hash uint64 `ch:"hash"`
	}
	if err := w.Select(ctx, &rows, `
		SELECT 'touch account' AS name, owner_hash AS hash FROM touches WHERE user_id = 'same'
		UNION ALL SELECT 'touch browser', owner_hash FROM touches WHERE user_id = '' AND visitor_id = 'same'
		UNION ALL SELECT 'conversion account', owner_hash FROM conversions WHERE event_id = 'e3'
		UNION ALL SELECT 'conversion browser', owner_hash FROM conversions WHERE event_id = 'e4'
		UNION ALL SELECT 'conversion without ids', owner_hash FROM conversions WHERE event_id = 'e5'
		UNION ALL SELECT 'link account', user_hash FROM visitor_links
		UNION ALL SELECT 'link browser', visitor_hash FROM visitor_links`); err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, r := range rows {
		got[r.Name] = r.Hash
	}
	if len(got) != 7 {
		t.Fatalf("hashes %v, want seven", got)
	}
	kinds := map[string]uint64{"touch account": 0, "conversion account": 0, "link account": 0,
		"touch browser": 2, "conversion browser": 2, "link browser": 2, "conversion without ids": 1}
	for name, kind := range kinds {
		if got[name]&3 != kind {
			t.Errorf("%s: hash %#x has kind %d, want %d", name, got[name], got[name]&3, kind)
		}
	}
	if got["touch account"] != got["conversion account"] || got["touch account"] != got["link account"] {
		t.Errorf("one account hashes differently across tables: %v", got)
	}
	if got["touch browser"] != got["conversion browser"] || got["touch browser"] != got["link browser"] {
		t.Errorf("one browser hashes differently across tables: %v", got)
	}
	if got["touch account"] == got["touch browser"] {
		t.Errorf("an account and a browser with the same id share the hash %#x", got["touch account"])
	}

	// Clearing the account id of a conversion leaves its browser's hash,
	// and no trace of the account.
	if err := w.Exec(ctx, "ALTER TABLE conversions UPDATE user_id = '' WHERE event_id = 'e3' SETTINGS mutations_sync = 1"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, w, "SELECT count() AS n FROM conversions WHERE owner_hash = {h:UInt64}", warehouse.Named("h", got["touch account"])); n != 0 {
		t.Errorf("%d conversions keep the hash of a cleared account id", n)
	}
	if n := count(t, w, "SELECT count() AS n FROM conversions WHERE event_id = 'e3' AND bitAnd(owner_hash, 3) = 2"); n != 1 {
		t.Errorf("the conversion without its account id is not its browser's")
	}
}

// TestOwnerHashesReachRowsWrittenBeforeThem upgrades a database that holds
// visits, conversions and browser sign-ins from the release before the
// owner hashes (migration 7): the rows written before the upgrade get the
// same hashes as the same rows written after it, and the engine has
// stored them (its mutations are done), so reports read them as numbers
// rather than computing them again.
func TestOwnerHashesReachRowsWrittenBeforeThem(t *testing.T) {
	ctx := t.Context()
	w := chtest.Embedded(t)
	if err := warehouse.Migrate(ctx, w, "down"); err != nil {
		t.Fatal(err)
	}
	if err := warehouse.MigrateToVersion(ctx, w, 7); err != nil {
		t.Fatal(err)
	}
	write := func(prefix string) {
		t.Helper()
		at := warehouse.Named("at", testBase)
		for _, q := range []string{
			`INSERT INTO events (event_id, event_time, received_at, event_type, event_name, user_id, visitor_id, session_id)
			 VALUES ('` + prefix + `1', {at:DateTime64(3)}, {at:DateTime64(3)}, 'page_view', 'page_view', 'acc', 'b1', '` + prefix + `s1'),
			        ('` + prefix + `2', {at:DateTime64(3)}, {at:DateTime64(3)}, 'page_view', 'page_view', NULL, 'b2', '` + prefix + `s2'),
			        ('` + prefix + `3', {at:DateTime64(3)}, {at:DateTime64(3)}, 'purchase', 'purchase', 'acc', 'b1', ''),
			        ('` + prefix + `4', {at:DateTime64(3)}, {at:DateTime64(3)}, 'purchase', 'purchase', NULL, 'b2', '')`,
			`INSERT INTO visitor_links (link_id, visitor_id, user_id, linked_at) VALUES ('` + prefix + `l', 'b2', 'acc', {at:DateTime64(3)})`,
		} {
			if err := w.Exec(ctx, q, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("old")
	if err := warehouse.Migrate(ctx, w, "up"); err != nil {
		t.Fatal(err)
	}
	write("new")
	// MATERIALIZE COLUMN runs as a mutation; wait for it, as a report
	// after an upgrade would find it done or reading the same values.
	deadline := time.Now().Add(time.Minute)
	for count(t, w, "SELECT count() AS n FROM system.mutations WHERE database = currentDatabase() AND NOT is_done") > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the upgrade's mutations are still running after a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var rows []struct {
		Name string `ch:"name"`
		Old  uint64 `ch:"old"`
		New  uint64 `ch:"new"`
	}
	if err := w.Select(ctx, &rows, `
		SELECT 'touch of the account' AS name,
		       anyIf(owner_hash, session_id = 'olds1') AS old, anyIf(owner_hash, session_id = 'news1') AS new FROM touches
		UNION ALL SELECT 'touch of the browser',
		       anyIf(owner_hash, session_id = 'olds2'), anyIf(owner_hash, session_id = 'news2') FROM touches
		UNION ALL SELECT 'conversion of the account',
		       anyIf(owner_hash, event_id = 'old3'), anyIf(owner_hash, event_id = 'new3') FROM conversions
		UNION ALL SELECT 'conversion of the browser',
		       anyIf(owner_hash, event_id = 'old4'), anyIf(owner_hash, event_id = 'new4') FROM conversions
		UNION ALL SELECT 'link: browser',
		       anyIf(visitor_hash, link_id = 'oldl'), anyIf(visitor_hash, link_id = 'newl') FROM visitor_links
		UNION ALL SELECT 'link: account',
		       anyIf(user_hash, link_id = 'oldl'), anyIf(user_hash, link_id = 'newl') FROM visitor_links`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6", len(rows))
	}
	for _, r := range rows {
		if r.Old == 0 || r.Old != r.New {
			t.Errorf("%s: hash %#x written before the upgrade, %#x after", r.Name, r.Old, r.New)
		}
	}
	// The hashes are stored in every part of the tables, the parts
	// written before the upgrade included, not computed on read.
	if n := count(t, w, `SELECT count() AS n FROM (
		    SELECT table, name, groupArray(column) AS cols FROM system.parts_columns
		    WHERE database = currentDatabase() AND active AND table IN ('touches', 'conversions', 'visitor_links')
		    GROUP BY table, name)
		WHERE (table IN ('touches', 'conversions') AND NOT has(cols, 'owner_hash'))
		   OR (table = 'visitor_links' AND NOT (has(cols, 'visitor_hash') AND has(cols, 'user_hash')))`); n != 0 {
		t.Errorf("%d parts of the upgraded tables lack a stored hash column", n)
	}
}
