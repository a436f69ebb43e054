package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/uptrace/bun"
)

// ForeignKey is one column of a foreign key in the live schema: Column of
// Table holds keys of rows of the table References.
type ForeignKey struct {
	Table      string
	Column     string
	References string
}

// UniqueIndex is one column of a unique index in the live schema. The
// index may be partial (unique among the rows meeting its WHERE clause)
// and may span several columns, each listed once under the same Index.
// A primary key and a UNIQUE constraint are kept as unique indexes too,
// under names the database makes up.
type UniqueIndex struct {
	Table  string
	Column string
	Index  string
}

// The queries below name their result columns as bun names the fields of
// ForeignKey and UniqueIndex, which it scans them into.

// foreignKeyQueries read every foreign key column of the live schema:
// pragma foreign_key_list of each table in SQLite, the catalog in
// PostgreSQL, which ties each column to its own constraint
// (information_schema matches them by the constraint's name alone, which
// two tables may share).
var foreignKeyQueries = map[string]string{
	SQLite: `
		SELECT m.name AS "table", p."from" AS "column", p."table" AS "references"
		FROM sqlite_master AS m, pragma_foreign_key_list(m.name) AS p
		WHERE m.type = 'table'`,
	Postgres: `
		SELECT t.relname AS "table", a.attname AS "column", r.relname AS "references"
		FROM pg_constraint AS c
		JOIN pg_class AS t ON t.oid = c.conrelid
		JOIN pg_namespace AS n ON n.oid = t.relnamespace
		JOIN pg_class AS r ON r.oid = c.confrelid
		JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
		WHERE c.contype = 'f' AND n.nspname = current_schema()`,
}

// uniqueIndexQueries read every column of a unique index of the live
// schema but golang-migrate's version table: pragma index_list and
// index_info in SQLite, the catalog in PostgreSQL. An indexed expression
// is no column and is left out on both (index_info has no name for it,
// pg_attribute no column 0), and so are the columns a PostgreSQL index
// only INCLUDEs, which take no part in what is unique.
var uniqueIndexQueries = map[string]string{
	SQLite: `
		SELECT m.name AS "table", i.name AS "column", l.name AS "index"
		FROM sqlite_master AS m, pragma_index_list(m.name) AS l, pragma_index_info(l.name) AS i
		WHERE m.type = 'table' AND l."unique" = 1 AND i.name IS NOT NULL AND m.name <> ?`,
	Postgres: `
		SELECT t.relname AS "table", a.attname AS "column", ic.relname AS "index"
		FROM pg_index AS x
		JOIN pg_class AS t ON t.oid = x.indrelid
		JOIN pg_class AS ic ON ic.oid = x.indexrelid
		JOIN pg_namespace AS n ON n.oid = t.relnamespace
		CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, pos)
		JOIN pg_attribute AS a ON a.attrelid = t.oid AND a.attnum = k.attnum
		WHERE x.indisunique AND k.pos <= x.indnkeyatts AND n.nspname = current_schema() AND t.relname <> ?`,
}

// ForeignKeys lists every foreign key column of every table in the live
// schema, sorted by table and column.
func ForeignKeys(ctx context.Context, db *bun.DB) ([]ForeignKey, error) {
	var out []ForeignKey
	if err := readSchema(ctx, db, foreignKeyQueries, &out); err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	slices.SortFunc(out, func(a, b ForeignKey) int {
		return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(a.Column, b.Column), cmp.Compare(a.References, b.References))
	})
	return out, nil
}

// UniqueIndexes lists every column of every unique index in the live
// schema, sorted by table, column and index.
func UniqueIndexes(ctx context.Context, db *bun.DB) ([]UniqueIndex, error) {
	var out []UniqueIndex
	if err := readSchema(ctx, db, uniqueIndexQueries, &out, MigrationsTable); err != nil {
		return nil, fmt.Errorf("read unique indexes: %w", err)
	}
	slices.SortFunc(out, func(a, b UniqueIndex) int {
		return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(a.Column, b.Column), cmp.Compare(a.Index, b.Index))
	})
	return out, nil
}

// readSchema runs the query queries hold for the store's dialect, with
// args, and scans its rows into dest, a pointer to a slice of structs.
// Sorting is left to the caller: the two servers collate differently.
func readSchema(ctx context.Context, db *bun.DB, queries map[string]string, dest any, args ...any) error {
	q, ok := queries[Dialect(db)]
	if !ok {
		return fmt.Errorf("unsupported dialect %s", Dialect(db))
	}
	return db.NewRaw(q, args...).Scan(ctx, dest)
}
