package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/uptrace/bun"
)

// Column is one column of a table in the live schema.
type Column struct {
	Table    string
	Name     string
	Type     string // as the database reports it: "TEXT" in SQLite, "timestamp with time zone" in PostgreSQL
	Nullable bool
	Comment  string // the column's COMMENT in PostgreSQL; SQLite has none
	// Family is the kind of value the type holds, the same word on both
	// dialects: one of the Family constants, or the lower-case type
	// itself when it is none of them.
	Family string
}

// Columns lists every column of every table in the live schema,
// sorted by table and column name: what the data map must cover. It reads
// the database, not the Go models, so a column a migration added without a
// model field still shows. golang-migrate's version table is left out.
//
// SQLite: the tables of sqlite_master (not its own sqlite_* tables) and
// pragma table_info of each. PostgreSQL: information_schema for the
// current schema, base tables only.
func Columns(ctx context.Context, db *bun.DB) ([]Column, error) {
	var (
		cols []Column
		err  error
		d    = Dialect(db)
	)
	switch d {
	case SQLite:
		cols, err = sqliteColumns(ctx, db)
	case Postgres:
		cols, err = postgresColumns(ctx, db)
	default:
		err = fmt.Errorf("unsupported dialect %s", d)
	}
	if err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	for i := range cols {
		cols[i].Family = typeFamily(d, cols[i].Type)
	}
	// Sorted here rather than by ORDER BY: the two servers collate
	// differently.
	slices.SortFunc(cols, func(a, b Column) int {
		return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(a.Name, b.Name))
	})
	return cols, nil
}

func sqliteColumns(ctx context.Context, db *bun.DB) ([]Column, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT m.name, p.name, p.type, p."notnull", p.pk
		FROM sqlite_master AS m, pragma_table_info(m.name) AS p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\' AND m.name <> ?`,
		MigrationsTable)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	type row struct {
		col   Column
		pkPos int
	}
	var all []row
	pkCount := map[string]int{}
	for rows.Next() {
		var (
			r       row
			notNull bool
		)
		if err := rows.Scan(&r.col.Table, &r.col.Name, &r.col.Type, &notNull, &r.pkPos); err != nil {
			return nil, err
		}
		r.col.Nullable = !notNull
		if r.pkPos > 0 {
			pkCount[r.col.Table]++
		}
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}

	cols := make([]Column, 0, len(all))
	for _, r := range all {
		// A lone INTEGER PRIMARY KEY is the rowid, which cannot be NULL
		// although table_info does not mark it NOT NULL.
		if r.pkPos > 0 && pkCount[r.col.Table] == 1 && strings.EqualFold(r.col.Type, "INTEGER") {
			r.col.Nullable = false
		}
		cols = append(cols, r.col)
	}
	return cols, nil
}

func postgresColumns(ctx context.Context, db *bun.DB) ([]Column, error) {
	// information_schema names arrays and user-defined types generically;
	// udt_name says which.
	rows, err := db.QueryContext(ctx, `
		SELECT c.table_name, c.column_name,
			CASE WHEN c.data_type IN ('ARRAY', 'USER-DEFINED') THEN c.udt_name ELSE c.data_type END,
			c.is_nullable = 'YES',
			coalesce(col_description(format('%I.%I', c.table_schema, c.table_name)::regclass, c.ordinal_position), '')
		FROM information_schema.columns AS c
		JOIN information_schema.tables AS t
			ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = current_schema()
			AND t.table_type = 'BASE TABLE'
			AND c.table_name <> ?`,
		MigrationsTable)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var cols []Column
	for rows.Next() {
		var c Column
		if err := rows.Scan(&c.Table, &c.Name, &c.Type, &c.Nullable, &c.Comment); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// Type families group the column types of both dialects by what they hold,
// so the schemas of SQLite and PostgreSQL can be compared.
const (
	FamilyText      = "text"
	FamilyInteger   = "integer"
	FamilyBoolean   = "boolean"
	FamilyTime      = "time"      // a point in time, with its zone
	FamilyNaiveTime = "naivetime" // a wall-clock time without zone: a mistake in our schema
	FamilyJSON      = "json"
	FamilyFloat     = "float"
	FamilyDecimal   = "decimal"
	FamilyBytes     = "bytes"
)

// typeFamily maps a column type, as the given dialect reports it, to its
// family. An unknown type is its own family, so two unknown types match
// only when they are spelt alike.
//
// PostgreSQL's timestamp without time zone has a family of its own: bun
// writes UTC times, but anything else reading or writing that column would
// silently shift them. In SQLite every time type holds text with the zone
// written out, so all of them are times with zone.
func typeFamily(dialect, sqlType string) string {
	t := strings.ToLower(strings.TrimSpace(sqlType))
	if i := strings.IndexByte(t, '('); i >= 0 {
		t = strings.TrimSpace(t[:i]) // varchar(64), numeric(10, 2)
	}
	switch t {
	case "text", "varchar", "character varying", "char", "character", "bpchar", "clob":
		return FamilyText
	case "integer", "int", "int2", "int4", "int8", "smallint", "bigint":
		return FamilyInteger
	case "boolean", "bool":
		return FamilyBoolean
	case "timestamptz", "timestamp with time zone", "datetime":
		return FamilyTime
	case "timestamp", "timestamp without time zone":
		if dialect == SQLite {
			return FamilyTime
		}
		return FamilyNaiveTime
	case "json", "jsonb":
		return FamilyJSON
	case "real", "double precision", "double", "float", "float4", "float8":
		return FamilyFloat
	case "numeric", "decimal":
		return FamilyDecimal
	case "bytea", "blob":
		return FamilyBytes
	default:
		return t
	}
}
