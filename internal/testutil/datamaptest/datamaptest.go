// Package datamaptest checks a module's tables against the data map built
// from the migrated schema, the check every module with tables runs.
package datamaptest

import (
	"testing"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/governance/datamap"
)

// EveryColumnTagged builds the data map of db for src and checks that every
// column of the named tables is tagged with a known category and that each
// of those tables marks exactly one subject column. Problems the map reports
// for other tables are not the module's and are ignored.
func EveryColumnTagged(t *testing.T, db *bun.DB, policy datamap.Policy, src datamap.Source, tables ...string) {
	t.Helper()
	m, problems, err := datamap.Build(t.Context(), datamap.Inputs{
		SQL: db, Sources: []datamap.Source{src},
		Policy: policy,
	})
	if err != nil {
		t.Fatal(err)
	}
	mine := map[string]bool{}
	for _, table := range tables {
		mine[table] = true
	}
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
}
