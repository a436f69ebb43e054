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

// TestEveryColumnIsTagged checks every migrated table of the module against
// its model: every column has a field with a taxonomy category, the user id
// is the subject column, and the reward and abuse data carry their own
// categories, which the retention job reads.
func TestEveryColumnIsTagged(t *testing.T) {
	eng, err := policies.New(context.Background(), policies.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"abuse_events": {
			"id": "system.operations", "occurred_at": "user.security.abuse_log,collected", "kind": "user.security.abuse_log",
			"user_id": "user.unique_id,subject=user", "ip_truncated": "user.security.abuse_log",
			"ua_family": "user.security.abuse_log", "detail": "user.security.abuse_log",
		},
		"reward_records": {
			"id": "system.operations", "user_id": "user.unique_id,subject=user", "kind": "user.security.reward_record",
			"task": "user.security.reward_record", "day": "user.security.reward_record",
			"credits": "user.security.reward_record", "created_at": "user.security.reward_record,collected",
		},
	}
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		m, err := risk.New(risk.Config{}, risk.Deps{DB: db})
		if err != nil {
			t.Fatal(err)
		}
		tags := map[string]map[string]string{}
		for _, model := range m.Models() {
			tbl := db.Table(reflect.TypeOf(model))
			tags[tbl.Name] = map[string]string{}
			for _, f := range tbl.Fields {
				tag := f.StructField.Tag.Get("privacy")
				cat, _, _ := strings.Cut(tag, ",")
				if c, err := eng.Category(cat); err != nil || c.Group {
					t.Errorf("%s.%s: tag %q names no category of the taxonomy", tbl.Name, f.Name, tag)
				}
				tags[tbl.Name][f.Name] = tag
			}
		}
		if !reflect.DeepEqual(tags, want) {
			t.Errorf("model tags = %v, want %v", tags, want)
		}
		live, err := sqlstore.Columns(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, c := range live {
			if _, ours := tags[c.Table]; !ours {
				continue
			}
			n[c.Table]++
			if _, ok := tags[c.Table][c.Name]; !ok {
				t.Errorf("column %s.%s has no tagged model field", c.Table, c.Name)
			}
		}
		for table, fields := range tags {
			if n[table] != len(fields) {
				t.Errorf("%s: %d columns in the schema, %d in the model", table, n[table], len(fields))
			}
		}
	})
}
