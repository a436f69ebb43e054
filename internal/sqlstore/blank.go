package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// ColumnsByName reads the live schema as Columns does, keyed
// "table.column".
func ColumnsByName(ctx context.Context, db *bun.DB) (map[string]Column, error) {
	cols, err := Columns(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("read sql schema: %w", err)
	}
	out := make(map[string]Column, len(cols))
	for _, c := range cols {
		out[c.Table+"."+c.Name] = c
	}
	return out, nil
}

// Blank is the value a cleared column holds: NULL where the column allows
// it, otherwise the empty value of its family (0, false, the Unix epoch,
// an empty JSON object, an empty string). Erasure and retention clear
// columns with it and check they hold it.
func (c Column) Blank() any {
	if c.Nullable {
		return nil
	}
	switch c.Family {
	case FamilyInteger, FamilyFloat, FamilyDecimal:
		return 0
	case FamilyBoolean:
		return false
	case FamilyTime:
		return time.Unix(0, 0).UTC()
	case FamilyJSON:
		return "{}"
	default:
		return ""
	}
}

// NotBlank returns the condition a row meets while the column does not
// hold its Blank value yet, with its arguments, for bun's Where: the
// column's name is one of them, quoted by bun.
func (c Column) NotBlank() (string, []any) {
	if c.Nullable {
		return "? IS NOT NULL", []any{bun.Ident(c.Name)}
	}
	return "? <> ?", []any{bun.Ident(c.Name), c.Blank()}
}

// Clear is the assignment that clears the column: it sets its Blank
// value.
func (c Column) Clear() Assignment {
	return Assignment{Column: c.Name, Value: c.Blank()}
}

// Quote quotes a table or column name the SQL standard's way, with double
// quotes, which SQLite, PostgreSQL and ClickHouse all read: a name from
// the data map can then be any word, a reserved one included, and never
// part of the statement's syntax. It serves conditions written once for
// the SQL store and the warehouse alike; a statement on the SQL store
// alone names its columns with bun.Ident.
func Quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
