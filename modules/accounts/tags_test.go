package accounts_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

// TestEveryColumnIsTagged checks the migrated schema, not only the Go
// models: every column of the tables this module's migration creates has
// a model field with a category the taxonomy defines, and each table has
// exactly one subject column.
func TestEveryColumnIsTagged(t *testing.T) {
	eng, err := engine()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, sqltest.SQLite(t), testConfig())
	models := append(e.m.Models(), adminlog.Models()...)
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		tags := map[string]map[string]string{} // table -> column -> tag
		for _, m := range models {
			table := db.Table(reflect.TypeOf(m))
			cols := map[string]string{}
			subjects := 0
			for _, f := range table.Fields {
				tag, ok := f.StructField.Tag.Lookup("privacy")
				if !ok || tag == "" {
					t.Errorf("%s.%s has no privacy tag", table.Name, f.Name)
					continue
				}
				parsed, err := datamap.ParseTagOptions(tag)
				if err != nil {
					t.Errorf("%s.%s: %v", table.Name, f.Name, err)
					continue
				}
				if parsed.Subject {
					subjects++
				}
				cat := parsed.Category
				c, err := eng.Category(cat)
				if err != nil || c.Group {
					t.Errorf("%s.%s: %q is not a category of the taxonomy", table.Name, f.Name, cat)
				}
				cols[f.Name] = tag
			}
			if subjects != 1 {
				t.Errorf("table %s has %d subject columns, want 1", table.Name, subjects)
			}
			tags[table.Name] = cols
		}
		live, err := sqlstore.Columns(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, c := range live {
			cols, ours := tags[c.Table]
			if !ours {
				continue
			}
			seen[c.Table]++
			if _, ok := cols[c.Name]; !ok {
				t.Errorf("column %s.%s has no tagged model field", c.Table, c.Name)
			}
		}
		for table, cols := range tags {
			if seen[table] != len(cols) {
				t.Errorf("table %s: %d columns in the schema, %d in the model", table, seen[table], len(cols))
			}
		}
	})
}
