package assets

import (
	"testing"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

// TestEveryColumnTagged reads the migrated schema of both stores and checks
// that every column of the module's tables is tagged with a known category
// and that each table marks its subject column.
func TestEveryColumnTagged(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		f := newFixture(t, db, Config{})
		e := authtest.Engine(t)
		m, problems, err := datamap.Build(t.Context(), datamap.Inputs{
			SQL: db, Sources: []datamap.Source{{Module: f.mod.Name(), Models: f.mod.Models()}},
			Policy: e,
		})
		if err != nil {
			t.Fatal(err)
		}
		mine := map[string]bool{"assets": true}
		for _, p := range problems {
			if mine[p.Table] {
				t.Errorf("data map problem: %s", p)
			}
		}
		columns, subjects := map[string]int{}, map[string]int{}
		for _, en := range m.Entries {
			if mine[en.Table] {
				columns[en.Table]++
				if en.Subject {
					subjects[en.Table]++
				}
			}
		}
		for table := range mine {
			if columns[table] == 0 || subjects[table] != 1 {
				t.Errorf("table %s: %d mapped columns, %d subject columns; want some and exactly one", table, columns[table], subjects[table])
			}
		}
	})
}
