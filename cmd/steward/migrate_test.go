package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/sqlstore"
)

// TestMigrateVersionOnlyReads asks a fresh data dir for its versions, as
// an operator checks before deciding to migrate: both stores say they are
// not migrated, and the SQLite file is still without a table.
func TestMigrateVersionOnlyReads(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command as a child process")
	}
	dir := t.TempDir()
	out := mustRunChild(t, dir, "migrate version")
	for _, want := range []string{"sql (sqlite): not migrated", "warehouse (embedded): not migrated"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate version printed %q, want %q", out, want)
		}
	}
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM sqlite_master WHERE type = 'table'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("migrate version created %d tables", n)
	}
	mustRunChild(t, dir, "migrate up")
	if out := mustRunChild(t, dir, "migrate version"); !strings.Contains(out, "sql (sqlite): version ") || !strings.Contains(out, "warehouse (embedded): version ") {
		t.Fatalf("after migrate up, migrate version printed %q", out)
	}
}
