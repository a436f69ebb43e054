package sqlstore_test

import (
	"context"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	sqlmigrations "github.com/stewardhq/steward/migrations/sql"
)

// versions reads the migration numbers from the files, one per file.
func versions(t *testing.T) []uint {
	t.Helper()
	src, err := sqlmigrations.Source(sqlstore.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := fs.ReadDir(src, ".")
	if err != nil {
		t.Fatal(err)
	}
	var vs []uint
	for _, e := range entries {
		number, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseUint(number, 10, 32)
		if err != nil {
			t.Fatalf("migration %s: %v", e.Name(), err)
		}
		vs = append(vs, uint(v))
	}
	return vs
}

// latestVersion reads the highest migration number from the files.
func latestVersion(t *testing.T) uint {
	t.Helper()
	return slices.Max(versions(t))
}

func wantVersion(t *testing.T, db *bun.DB, want uint) {
	t.Helper()
	v, dirty, err := sqlstore.MigrationVersion(t.Context(), db)
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	if v != want || dirty {
		t.Errorf("version = %d (dirty %v), want %d (clean)", v, dirty, want)
	}
}

func columns(t *testing.T, db *bun.DB) []sqlstore.Column {
	t.Helper()
	cols, err := sqlstore.Columns(t.Context(), db)
	if err != nil {
		t.Fatalf("columns: %v", err)
	}
	return cols
}

// TestMigrationsGiveBothDialectsTheSameSchema compares the live schemas:
// the same tables and columns, nullability, and types of the same family.
func TestMigrationsGiveBothDialectsTheSameSchema(t *testing.T) {
	lite, pg := columns(t, sqltest.SQLite(t)), columns(t, sqltest.Postgres(t))
	if len(lite) == 0 {
		t.Fatal("no columns after migrating up")
	}

	key := func(c sqlstore.Column) string { return c.Table + "." + c.Name }
	byKey := map[string]sqlstore.Column{}
	for _, c := range pg {
		byKey[key(c)] = c
	}
	for _, l := range lite {
		p, ok := byKey[key(l)]
		if !ok {
			t.Errorf("%s exists on sqlite only", key(l))
			continue
		}
		delete(byKey, key(l))
		if l.Nullable != p.Nullable {
			t.Errorf("%s: nullable on sqlite %v, on postgres %v", key(l), l.Nullable, p.Nullable)
		}
		// SQLite has no JSON type and keeps JSON as TEXT.
		if l.Family != p.Family && (l.Family != sqlstore.FamilyText || p.Family != sqlstore.FamilyJSON) {
			t.Errorf("%s: sqlite %s (%s) and postgres %s (%s) hold different kinds of value", key(l), l.Type, l.Family, p.Type, p.Family)
		}
		if p.Family == sqlstore.FamilyNaiveTime {
			t.Errorf("%s: postgres %s drops the zone; use TIMESTAMPTZ", key(l), p.Type)
		}
	}
	for k := range byKey {
		t.Errorf("%s exists on postgres only", k)
	}
}

func TestMigrateDownAndUpAgain(t *testing.T) {
	latest := latestVersion(t)
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		before := columns(t, db)
		wantVersion(t, db, latest)

		if err := sqlstore.Migrate(ctx, db, sqlstore.Up); err != nil {
			t.Fatalf("up when already up: %v", err)
		}

		if err := sqlstore.Migrate(ctx, db, sqlstore.Down); err != nil {
			t.Fatalf("down: %v", err)
		}
		if cols := columns(t, db); len(cols) != 0 {
			t.Errorf("tables left after down: %v", cols)
		}
		wantVersion(t, db, 0)

		if err := sqlstore.Migrate(ctx, db, "1"); err != nil {
			t.Fatalf("to version 1: %v", err)
		}
		wantVersion(t, db, 1)

		if err := sqlstore.Migrate(ctx, db, sqlstore.Up); err != nil {
			t.Fatalf("up again: %v", err)
		}
		wantVersion(t, db, latest)
		if after := columns(t, db); !slices.Equal(before, after) {
			t.Errorf("schema after down and up differs:\nbefore %v\nafter  %v", before, after)
		}
	})
}

func TestMigrateRejectsUnknownTarget(t *testing.T) {
	db := sqltest.OpenEmpty(t, sqlstore.SQLite)
	for _, target := range []string{"", "sideways", "-1", "down1"} {
		if err := sqlstore.Migrate(t.Context(), db, target); err == nil {
			t.Errorf("target %q accepted", target)
		}
	}
	wantVersion(t, db, 0)
}

func TestMigrateStopsOnCancelledContext(t *testing.T) {
	db := sqltest.OpenEmpty(t, sqlstore.SQLite)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sqlstore.Migrate(ctx, db, sqlstore.Up); err == nil {
		t.Error("migrate ran with a cancelled context")
	}
	wantVersion(t, db, 0)
}

// TestMigrateLeavesPoolOpen: golang-migrate's drivers close the database
// they are given; the store's pool must survive, and on PostgreSQL the
// migration's own connections must all be gone afterwards.
func TestMigrateLeavesPoolOpen(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		for range 3 {
			if err := sqlstore.Migrate(ctx, db, sqlstore.Up); err != nil {
				t.Fatal(err)
			}
			if _, _, err := sqlstore.MigrationVersion(ctx, db); err != nil {
				t.Fatal(err)
			}
		}
		if err := sqlstore.Ping(ctx, db); err != nil {
			t.Fatalf("pool closed by migrate: %v", err)
		}
		if sqlstore.Dialect(db) != sqlstore.Postgres {
			return
		}

		// Close the pool's idle connections and hold one: any other
		// session on this database is one a migration left open.
		db.SetMaxIdleConns(0)
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// A closed session leaves pg_stat_activity a moment after the
		// client hangs up; the deadline only bounds a leak.
		deadline := time.Now().Add(time.Minute)
		for {
			var others int
			err := conn.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&others)
			if err != nil {
				t.Fatal(err)
			}
			if others == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d sessions left open on the database after migrating", others)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// TestColumnsReadsTheLiveSchema: a table made outside the migrations shows
// (the data map must cover it too), golang-migrate's own table does not.
func TestColumnsReadsTheLiveSchema(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		if _, err := db.ExecContext(ctx, `CREATE TABLE extra (
			id      INTEGER PRIMARY KEY,
			note    TEXT,
			created TIMESTAMPTZ NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		if sqlstore.Dialect(db) == sqlstore.Postgres {
			if _, err := db.ExecContext(ctx, "COMMENT ON COLUMN extra.note IS 'user.content'"); err != nil {
				t.Fatal(err)
			}
		}
		var got []sqlstore.Column
		for _, c := range columns(t, db) {
			if c.Table == sqlstore.MigrationsTable {
				t.Errorf("columns list golang-migrate's table: %+v", c)
			}
			if c.Table == "extra" {
				c.Type = "" // spelt differently per dialect; Family says the same
				got = append(got, c)
			}
		}
		wantComment := ""
		if sqlstore.Dialect(db) == sqlstore.Postgres {
			wantComment = "user.content"
		}
		want := []sqlstore.Column{
			{Table: "extra", Name: "created", Nullable: false, Family: sqlstore.FamilyTime},
			{Table: "extra", Name: "id", Nullable: false, Family: sqlstore.FamilyInteger},
			{Table: "extra", Name: "note", Nullable: true, Comment: wantComment, Family: sqlstore.FamilyText},
		}
		if !slices.Equal(got, want) {
			t.Errorf("columns of extra:\ngot  %+v\nwant %+v", got, want)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Errorf("not a number: %q", s)
	}
	return n
}

// TestMigrationVersionOnlyReads asks a fresh database its version: 0, and
// the database still has no table at all afterwards.
func TestMigrationVersionOnlyReads(t *testing.T) {
	for _, d := range []string{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(d, func(t *testing.T) {
			db := sqltest.OpenEmpty(t, d)
			wantVersion(t, db, 0)
			q := "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
			if d == sqlstore.Postgres {
				q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
			}
			var n int
			if err := db.QueryRowContext(t.Context(), q).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("asking the version created %d tables", n)
			}
		})
	}
}
