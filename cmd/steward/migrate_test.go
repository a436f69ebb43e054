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

// TestUnmigratedStoresAreNamed runs the governance commands on stores that
// were never migrated, as on a production server where automatic
// migration is off: none reports success, and each says to migrate.
func TestUnmigratedStoresAreNamed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command as child processes")
	}
	commands := []string{"datamap", "retention run --dry-run", "audit"}
	for _, args := range commands {
		t.Run("nothing migrated/"+args, func(t *testing.T) {
			cmd := childCmd(t, t.TempDir(), args)
			cmd.Env = append(cmd.Env, "STEWARD_AUTO_MIGRATE=false")
			code, out, errOut := runChildCmd(t, cmd, args)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, out, errOut)
			}
			if !strings.Contains(errOut, "SQL store is at migration 0 of") || !strings.Contains(errOut, "steward migrate up") {
				t.Fatalf("stderr does not name the unmigrated SQL store:\n%s", errOut)
			}
		})
	}
	// The SQL store migrated, the warehouse not (another warehouse
	// database in the same engine): the SQL side works, and the
	// warehouse's absence is named, never skipped.
	dir := t.TempDir()
	mustRunChild(t, dir, "migrate up")
	for _, args := range commands {
		t.Run("warehouse not migrated/"+args, func(t *testing.T) {
			cmd := childCmd(t, dir, args)
			cmd.Env = append(cmd.Env, "STEWARD_AUTO_MIGRATE=false", "STEWARD_CLICKHOUSE_DATABASE=never_migrated")
			code, out, errOut := runChildCmd(t, cmd, args)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, out, errOut)
			}
			if !strings.Contains(out+errOut, "warehouse schema is at migration 0 of") || !strings.Contains(out+errOut, "steward migrate up") {
				t.Fatalf("output does not name the unmigrated warehouse:\n%s%s", out, errOut)
			}
		})
	}
}
