package sqltest

import (
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/sqlstore"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestDialectsRunsEachOnAFreshMigratedDatabase(t *testing.T) {
	var ran []string
	for round := range 2 {
		Dialects(t, func(t *testing.T, db *bun.DB) {
			ran = append(ran, t.Name())
			if d := sqlstore.Dialect(db); !strings.HasPrefix(path.Base(t.Name()), d) {
				t.Errorf("subtest %s got a %s database", t.Name(), d)
			}
			v, dirty, err := sqlstore.MigrationVersion(t.Context(), db)
			if err != nil || v == 0 || dirty {
				t.Fatalf("version = %d (dirty %v, err %v), want migrated", v, dirty, err)
			}
			// Each call starts empty: the first round's row is gone.
			n, err := db.NewSelect().Model((*sqlstore.Setting)(nil)).Count(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("round %d: database holds %d settings from an earlier test", round, n)
			}
			s := &sqlstore.Setting{Key: "k", Value: "v", UpdatedAt: time.Now()}
			if _, err := db.NewInsert().Model(s).Exec(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
	want := []string{
		t.Name() + "/sqlite", t.Name() + "/postgres",
		t.Name() + "/sqlite#01", t.Name() + "/postgres#01",
	}
	if !slices.Equal(ran, want) {
		t.Errorf("ran %v, want %v", ran, want)
	}
}

func TestOpenEmptyHasNoMigrations(t *testing.T) {
	for _, dialect := range []string{sqlstore.SQLite, sqlstore.Postgres} {
		db := OpenEmpty(t, dialect)
		cols, err := sqlstore.Columns(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		if len(cols) != 0 {
			t.Errorf("%s: fresh database has columns %v", dialect, cols)
		}
	}
}
