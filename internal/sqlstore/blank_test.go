package sqlstore_test

import (
	"context"
	"testing"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

// TestBlankClearsEveryFamily clears a column of each family with its
// Blank value on both dialects, and counts the rows NotBlank still finds
// before and after.
func TestBlankClearsEveryFamily(t *testing.T) {
	ctx := context.Background()
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		if _, err := db.ExecContext(ctx, `CREATE TABLE blank_probe (
			id TEXT PRIMARY KEY, note TEXT NOT NULL, maybe TEXT, n INTEGER NOT NULL, ok BOOLEAN NOT NULL,
			at TIMESTAMP WITH TIME ZONE NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO blank_probe VALUES ('a', 'text', 'maybe', 7, TRUE, '2026-01-02 03:04:05+00'),
			('b', 'more', NULL, 1, TRUE, '2026-01-02 03:04:05+00')`); err != nil {
			t.Fatal(err)
		}
		cols, err := sqlstore.ColumnsByName(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			column       string
			before, want int64 // rows not blank before and after clearing row a
		}{
			{"note", 2, 1},
			{"maybe", 1, 0},
			{"n", 2, 1},
			{"ok", 2, 1},
			{"at", 2, 1},
		}
		for _, tt := range tests {
			t.Run(tt.column, func(t *testing.T) {
				c, ok := cols["blank_probe."+tt.column]
				if !ok {
					t.Fatalf("no column %s in %v", tt.column, cols)
				}
				notBlank := sqlstore.Rows{Table: "blank_probe"}.AndNotBlank(c)
				if n, err := notBlank.Count(ctx, db); err != nil || n != tt.before {
					t.Fatalf("before: %d rows not blank (%v), want %d", n, err, tt.before)
				}
				if _, err := db.NewUpdate().Table("blank_probe").Set("? = ?", bun.Ident(tt.column), c.Blank()).Where("id = 'a'").Exec(ctx); err != nil {
					t.Fatal(err)
				}
				if n, err := notBlank.Count(ctx, db); err != nil || n != tt.want {
					t.Fatalf("after: %d rows not blank (%v), want %d", n, err, tt.want)
				}
			})
		}
	})
}

// TestQuoteTakesReservedWords names a table and a column with reserved
// words: quoted, they are names on both dialects.
func TestQuoteTakesReservedWords(t *testing.T) {
	ctx := context.Background()
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		table, column := sqlstore.Quote("order"), sqlstore.Quote("group")
		if _, err := db.ExecContext(ctx, "CREATE TABLE "+table+" ("+column+" TEXT NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO "+table+" VALUES ('a'), ('b'), ('a')"); err != nil {
			t.Fatal(err)
		}
		rows := sqlstore.Rows{Table: "order", Where: column + " = ?", Args: []any{"a"}}
		if n, err := rows.Count(ctx, db); err != nil || n != 2 {
			t.Fatalf("counted %d (%v), want 2", n, err)
		}
	})
	if got := sqlstore.Quote(`a"b`); got != `"a""b"` {
		t.Fatalf("Quote doubles an inner quote: got %s", got)
	}
}
