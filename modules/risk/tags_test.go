package risk_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/modules/risk"
	"github.com/stewardhq/steward/policies"
)

// TestEveryColumnIsTagged checks the migrated abuse_events table against
// the model: every column has a field with a taxonomy category, and the
// user id is the subject column.
func TestEveryColumnIsTagged(t *testing.T) {
	eng, err := policies.New(context.Background(), policies.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		m, err := risk.New(risk.Options{DB: db})
		if err != nil {
			t.Fatal(err)
		}
		tags := map[string]string{}
		var table string
		for _, model := range m.Models() {
			tbl := db.Table(reflect.TypeOf(model))
			table = tbl.Name
			for _, f := range tbl.Fields {
				tag := f.StructField.Tag.Get("privacy")
				cat, _, _ := strings.Cut(tag, ",")
				if c, err := eng.Category(cat); err != nil || c.Group {
					t.Errorf("%s.%s: tag %q names no category of the taxonomy", tbl.Name, f.Name, tag)
				}
				tags[f.Name] = tag
			}
		}
		if tags["user_id"] != "user.unique_id,subject" {
			t.Errorf("user_id tag = %q, want the subject column", tags["user_id"])
		}
		live, err := sqlstore.Columns(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range live {
			if c.Table != table {
				continue
			}
			n++
			if _, ok := tags[c.Name]; !ok {
				t.Errorf("column %s.%s has no tagged model field", c.Table, c.Name)
			}
		}
		if n != len(tags) {
			t.Errorf("%s: %d columns in the schema, %d in the model", table, n, len(tags))
		}
	})
}
