package datamaptest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

// ModelsTagged checks the migrated schema of both dialects against models:
// every column of the tables whose names start with one of prefixes has a
// model field whose privacy tag is a category of the taxonomy, and every
// tagged field has its column. what names the module's columns in the
// message of a count that differs.
func ModelsTagged(t *testing.T, models []any, what string, prefixes ...string) {
	t.Helper()
	taxonomy := readTaxonomy(t)
	tags := map[string]string{} // table.column -> category
	for _, m := range models {
		typ := reflect.TypeOf(m).Elem()
		table := ""
		for i := range typ.NumField() {
			f := typ.Field(i)
			bunTag := f.Tag.Get("bun")
			if f.Anonymous {
				table = strings.TrimPrefix(bunTag, "table:")
				continue
			}
			col, _, _ := strings.Cut(bunTag, ",")
			cat, _, _ := strings.Cut(f.Tag.Get("privacy"), ",")
			tags[table+"."+col] = cat
		}
	}
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		cols, err := sqlstore.Columns(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, c := range cols {
			if !hasAnyPrefix(c.Table, prefixes) {
				continue
			}
			seen++
			cat, ok := tags[c.Table+"."+c.Name]
			if !ok || cat == "" {
				t.Errorf("%s.%s has no tagged model field", c.Table, c.Name)
			} else if _, ok := taxonomy[cat]; !ok {
				t.Errorf("%s.%s is tagged %q, which the taxonomy does not define", c.Table, c.Name, cat)
			}
		}
		if seen != len(tags) {
			t.Errorf("schema has %d %s columns, models tag %d", seen, what, len(tags))
		}
	})
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// readTaxonomy reads the categories the policy data defines, from the file
// the policy engine embeds.
func readTaxonomy(t *testing.T) map[string]any {
	t.Helper()
	_, here, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("datamaptest: cannot locate the source tree")
	}
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "..", "policies", "data", "taxonomy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var taxonomy map[string]any
	if err := json.Unmarshal(raw, &taxonomy); err != nil {
		t.Fatal(err)
	}
	return taxonomy
}
