package sqlstore_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

// migrateTo moves db to version and fails the test when it cannot.
func migrateTo(t *testing.T, db *bun.DB, version uint) {
	t.Helper()
	if err := sqlstore.Migrate(t.Context(), db, strconv.FormatUint(uint64(version), 10)); err != nil {
		t.Fatalf("migrate to %d: %v", version, err)
	}
	wantVersion(t, db, version)
}

// versionBefore returns the number of the migration applied just before
// version, read from the files, so a test of one migration does not break
// when another branch adds one below it.
func versionBefore(t *testing.T, version uint) uint {
	t.Helper()
	var before uint
	for _, v := range versions(t) {
		if v < version {
			before = max(before, v)
		}
	}
	if before == 0 {
		t.Fatalf("no migration before %d", version)
	}
	return before
}

// TestAbuseAddressesTakeTheStoredForm: migration 0034 rewrites the
// truncated addresses the risk module stored as prefixes
// ("203.0.113.0/24") into the one stored form of a truncated address
// ("203.0.113.0", package ipaddr), and its down file writes them back.
func TestAbuseAddressesTakeTheStoredForm(t *testing.T) {
	const version = 34
	rows := []struct {
		name, stored, up, down string
	}{
		{name: "ipv4 prefix", stored: "203.0.113.0/24", up: "203.0.113.0", down: "203.0.113.0/24"},
		{name: "ipv6 prefix", stored: "2001:db8:abcd::/48", up: "2001:db8:abcd::", down: "2001:db8:abcd::/48"},
		{name: "short ipv6 prefix", stored: "2001:db8::/48", up: "2001:db8::", down: "2001:db8::/48"},
		{name: "already an address", stored: "198.51.100.0", up: "198.51.100.0", down: "198.51.100.0/24"},
		{name: "unknown address", stored: "", up: "", down: ""},
	}
	at := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
	for _, dialect := range []string{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(dialect, func(t *testing.T) {
			ctx := t.Context()
			db := sqltest.OpenEmpty(t, dialect)
			before := versionBefore(t, version)
			migrateTo(t, db, before)
			for i, r := range rows {
				if _, err := db.ExecContext(ctx, `INSERT INTO abuse_events (id, occurred_at, kind, user_id, ip_truncated, ua_family, detail)
					VALUES (?, ?, 'rate_limited', NULL, ?, 'other', '')`, fmt.Sprintf("ab_%d", i), at, r.stored); err != nil {
					t.Fatalf("insert %s: %v", r.name, err)
				}
			}
			check := func(step string, want func(i int) string) {
				t.Helper()
				for i, r := range rows {
					var got string
					if err := db.QueryRowContext(ctx, "SELECT ip_truncated FROM abuse_events WHERE id = ?", fmt.Sprintf("ab_%d", i)).Scan(&got); err != nil {
						t.Fatalf("%s: read %s: %v", step, r.name, err)
					}
					if got != want(i) {
						t.Errorf("%s: %s: ip_truncated = %q, want %q", step, r.name, got, want(i))
					}
				}
			}
			migrateTo(t, db, version)
			check("up", func(i int) string { return rows[i].up })
			migrateTo(t, db, before)
			check("down", func(i int) string { return rows[i].down })
		})
	}
}
