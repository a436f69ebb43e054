package sqlstore_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

// orders fills the table "order", whose name and column "group" are
// reserved words, afresh: four orders of two owners, placed a month
// apart from January 2026, some without a group or a note.
func orders(t *testing.T, db *bun.DB) {
	t.Helper()
	for _, q := range []string{
		`DROP TABLE IF EXISTS "order"`,
		`CREATE TABLE "order" (id TEXT PRIMARY KEY, "group" TEXT, owner TEXT NOT NULL,
			placed_at TIMESTAMP WITH TIME ZONE NOT NULL, note TEXT)`,
		`INSERT INTO "order" VALUES
			('a', 'red', 'ann', '2026-01-01 10:00:00+00:00', 'x'),
			('b', NULL, 'ann', '2026-02-01 10:00:00+00:00', NULL),
			('c', 'blue', 'bob', '2026-03-01 10:00:00+00:00', 'y'),
			('d', 'red', 'bob', '2026-04-01 10:00:00+00:00', NULL)`,
	} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
}

// orderTable reads "order" back with plain SQL, one line a row in id
// order: id, group, owner, note (NULL spelt out) and whether the order was
// placed before February 2026.
func orderTable(t *testing.T, db *bun.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT id, coalesce("group", 'NULL'), owner, coalesce(note, 'NULL'),
		CASE WHEN placed_at < '2026-02-01 00:00:00+00:00' THEN 'january' ELSE 'later' END
		FROM "order" ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		f := make([]string, 5)
		if err := rows.Scan(&f[0], &f[1], &f[2], &f[3], &f[4]); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join(f, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// op is what a test does to the rows, with the count it returns.
type op func(r sqlstore.Rows, ctx context.Context, db bun.IDB) (int64, error)

func update(sets ...sqlstore.Assignment) op {
	return func(r sqlstore.Rows, ctx context.Context, db bun.IDB) (int64, error) {
		return r.Update(ctx, db, sets)
	}
}

// TestRows counts, deletes and updates rows named by conditions on both
// dialects, and reads the table back with plain SQL after each.
func TestRows(t *testing.T) {
	var (
		group    = bun.Ident("group")
		owner    = bun.Ident("owner")
		placedAt = bun.Ident("placed_at")
		all      = sqlstore.Rows{Table: "order"}
		ann      = all.And("? = ?", owner, "ann")
		bob      = all.And("? = ?", owner, "bob")
		mid      = time.Date(2026, 2, 15, 0, 0, 0, 0, time.UTC)
	)
	unchanged := []string{"a red ann x january", "b NULL ann NULL later", "c blue bob y later", "d red bob NULL later"}
	tests := []struct {
		name  string
		rows  sqlstore.Rows
		op    op
		want  int64
		after []string
	}{
		{name: "count every row", rows: all, op: sqlstore.Rows.Count, want: 4, after: unchanged},
		{name: "count under a reserved word", rows: all.And("? = ?", group, "red"), op: sqlstore.Rows.Count, want: 2, after: unchanged},
		{name: "count under and-ed conditions with a time", rows: ann.And("? > ?", placedAt, time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)),
			op: sqlstore.Rows.Count, want: 1, after: unchanged},
		{name: "count under a condition with a NULL argument", rows: all.And("? IS NOT DISTINCT FROM ?", group, nil),
			op: sqlstore.Rows.Count, want: 1, after: unchanged},
		{name: "count rows with a nullable column not blank", rows: all.AndNotBlank(sqlstore.Column{Name: "group", Nullable: true}),
			op: sqlstore.Rows.Count, want: 3, after: unchanged},
		{name: "count rows with any of two columns not blank",
			rows: bob.AndNotBlank(sqlstore.Column{Name: "note", Nullable: true}, sqlstore.Column{Name: "owner", Family: sqlstore.FamilyText}),
			op:   sqlstore.Rows.Count, want: 2, after: unchanged},
		{name: "count rows with no column to be blank", rows: all.AndNotBlank(), op: sqlstore.Rows.Count, want: 0, after: unchanged},
		{name: "delete under and-ed conditions", rows: bob.And("? < ?", placedAt, mid.AddDate(0, 1, 0)), op: sqlstore.Rows.Delete, want: 1,
			after: []string{"a red ann x january", "b NULL ann NULL later", "d red bob NULL later"}},
		{name: "delete nothing", rows: ann.And("? > ?", placedAt, mid), op: sqlstore.Rows.Delete, want: 0, after: unchanged},
		{name: "delete every row", rows: all, op: sqlstore.Rows.Delete, want: 4, after: []string{}},
		{name: "update a reserved word and set NULL", rows: ann,
			op:   update(sqlstore.Assignment{Column: "group", Value: "green"}, sqlstore.Column{Name: "note", Nullable: true}.Clear()),
			want: 2, after: []string{"a green ann NULL january", "b green ann NULL later", "c blue bob y later", "d red bob NULL later"}},
		{name: "update keeping NULL", rows: all.And("? < ?", placedAt, mid.AddDate(0, 1, 0)),
			op:   update(sqlstore.Assignment{Column: "group", Value: "erased", KeepNull: true}, sqlstore.Assignment{Column: "note", Value: "n", KeepNull: true}),
			want: 3, after: []string{"a erased ann n january", "b NULL ann NULL later", "c erased bob n later", "d red bob NULL later"}},
		{name: "update a time", rows: bob.And("? = ?", group, "red"), op: update(sqlstore.Assignment{Column: "placed_at", Value: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)}),
			want: 1, after: []string{"a red ann x january", "b NULL ann NULL later", "c blue bob y later", "d red bob NULL january"}},
		{name: "update every row", rows: all, op: update(sqlstore.Assignment{Column: "owner", Value: "cy"}),
			want: 4, after: []string{"a red cy x january", "b NULL cy NULL later", "c blue cy y later", "d red cy NULL later"}},
	}
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				orders(t, db)
				n, err := tt.op(tt.rows, t.Context(), db)
				if err != nil {
					t.Fatal(err)
				}
				if n != tt.want {
					t.Errorf("got %d rows, want %d", n, tt.want)
				}
				if got := orderTable(t, db); !slices.Equal(got, tt.after) {
					t.Errorf("table after:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.after, "\n"))
				}
			})
		}
	})
}

// TestRowsRead reads columns of the rows named by conditions and compares
// them with what plain SQL reads.
func TestRowsRead(t *testing.T) {
	owner := bun.Ident("owner")
	all := sqlstore.Rows{Table: "order"}
	tests := []struct {
		name    string
		rows    sqlstore.Rows
		columns []string
		// plain is the same selection in plain SQL.
		plain string
	}{
		{name: "reserved word in the order asked", rows: all.And("? = ?", owner, "bob"), columns: []string{"group", "id"},
			plain: `SELECT "group", id FROM "order" WHERE owner = 'bob'`},
		{name: "NULL values", rows: all.And("? = ?", owner, "ann"), columns: []string{"id", "note"},
			plain: `SELECT id, note FROM "order" WHERE owner = 'ann'`},
		{name: "and-ed conditions with a time", rows: all.And("? = ?", owner, "bob").And("? > ?", bun.Ident("placed_at"), time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)),
			columns: []string{"id", "group", "note"}, plain: `SELECT id, "group", note FROM "order" WHERE id = 'd'`},
		{name: "every row", rows: all, columns: []string{"id"}, plain: `SELECT id FROM "order"`},
	}
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		orders(t, db)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := tt.rows.Read(t.Context(), db, tt.columns)
				if err != nil {
					t.Fatal(err)
				}
				want, err := db.QueryContext(t.Context(), tt.plain)
				if err != nil {
					t.Fatal(err)
				}
				g, w := lines(t, got), lines(t, want)
				if len(w) == 0 || !slices.Equal(g, w) {
					t.Errorf("read:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
				}
			})
		}
	})
}

// lines closes rows after reading them as sorted lines of their values,
// NULL spelt out.
func lines(t *testing.T, rows *sql.Rows) []string {
	t.Helper()
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		f := make([]string, len(vals))
		for i, v := range vals {
			f[i] = nullText(v)
		}
		out = append(out, strings.Join(f, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// nullText is the text of v, or NULL.
func nullText(v sql.NullString) string {
	if !v.Valid {
		return "NULL"
	}
	return v.String
}

// TestRowsRefuseNothingToDo checks that an update with no assignment and
// a read of no column fail rather than send a broken statement.
func TestRowsRefuseNothingToDo(t *testing.T) {
	db := sqltest.SQLite(t)
	orders(t, db)
	r := sqlstore.Rows{Table: "order"}
	if _, err := r.Update(t.Context(), db, nil); err == nil {
		t.Error("update with no assignment succeeded")
	}
	if _, err := r.Read(t.Context(), db, nil); err == nil {
		t.Error("read of no column succeeded")
	}
}
