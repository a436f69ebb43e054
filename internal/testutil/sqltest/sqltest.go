// Package sqltest provides migrated SQL stores for tests, on SQLite and on
// PostgreSQL, so every store test runs against both real databases:
//
//	func TestMain(m *testing.M) { os.Exit(sqltest.Main(m)) }
//
//	func TestCreateUser(t *testing.T) {
//		sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
//			// db is a fresh, fully migrated database of one dialect.
//		})
//	}
//
// PostgreSQL comes from package pgtest: a throwaway server per test binary,
// or the server STEWARD_TEST_POSTGRES_URL names.
package sqltest

import (
	"context"
	"testing"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
)

// Main runs the tests and stops the PostgreSQL test server afterwards.
// Return its result from TestMain with os.Exit.
func Main(m *testing.M) int {
	return pgtest.Main(m)
}

// Dialects runs fn as the subtests "sqlite" and "postgres", each with a
// fresh database migrated up. fn may call t.Parallel.
func Dialects(t *testing.T, fn func(t *testing.T, db *bun.DB)) {
	t.Helper()
	for _, dialect := range []string{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(dialect, func(t *testing.T) {
			fn(t, Open(t, dialect))
		})
	}
}

// SQLite returns a fresh, migrated SQLite database in a temporary data dir.
func SQLite(t testing.TB) *bun.DB {
	t.Helper()
	return Open(t, sqlstore.SQLite)
}

// Postgres returns a fresh, migrated PostgreSQL database.
func Postgres(t testing.TB) *bun.DB {
	t.Helper()
	return Open(t, sqlstore.Postgres)
}

// Open returns a fresh, migrated database of the dialect ("sqlite" or
// "postgres"), closed when the test ends.
func Open(t testing.TB, dialect string) *bun.DB {
	t.Helper()
	db := OpenEmpty(t, dialect)
	if err := sqlstore.Migrate(context.Background(), db, sqlstore.Up); err != nil {
		t.Fatalf("sqltest: migrate %s up: %v", dialect, err)
	}
	return db
}

// OpenEmpty returns a fresh database of the dialect with no migration
// applied, for tests of the migrations themselves. It is closed when the
// test ends.
func OpenEmpty(t testing.TB, dialect string) *bun.DB {
	t.Helper()
	var cfg sqlstore.Config
	switch dialect {
	case sqlstore.SQLite:
		cfg.DataDir = t.TempDir()
	case sqlstore.Postgres:
		cfg.URL = pgtest.NewDatabase(t)
	default:
		t.Fatalf("sqltest: unknown dialect %q", dialect)
	}
	db, err := sqlstore.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("sqltest: open %s: %v", dialect, err)
	}
	// Registered after the temp dir and the database, so it runs before
	// they are removed.
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("sqltest: close %s: %v", dialect, err)
		}
	})
	return db
}
