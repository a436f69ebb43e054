package warehouse_test

import (
	"testing"

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
