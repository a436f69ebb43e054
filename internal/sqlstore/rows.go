package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/uptrace/bun"
)

// Rows names the rows of one table that meet a condition. It is how
// governance counts, reads, deletes and clears the rows of a module's
// table, which it knows by name from the data map rather than by a model:
// every statement is built with bun's query builder, so the table's and
// the columns' names are quoted by bun and never pasted into the text.
//
// Where is a condition with "?" placeholders for Args, as bun's Where
// takes it; a column it names goes in as a bun.Ident argument. An empty
// Where means every row of the table.
type Rows struct {
	Table string
	Where string
	Args  []any
}

// And narrows the rows to those that also meet cond, a condition with "?"
// placeholders for args. r is left as it was.
func (r Rows) And(cond string, args ...any) Rows {
	if r.Where == "" {
		return Rows{Table: r.Table, Where: cond, Args: args}
	}
	// Clipped, so the new arguments never land in an array r or another
	// narrowing of r still uses.
	return Rows{Table: r.Table, Where: "(" + r.Where + ") AND (" + cond + ")", Args: append(slices.Clip(r.Args), args...)}
}

// AndNotBlank narrows the rows to those where at least one of cols does
// not hold its Blank value yet: the rows that clearing cols would change.
// With no column, no row is left.
func (r Rows) AndNotBlank(cols ...Column) Rows {
	if len(cols) == 0 {
		return r.And("FALSE")
	}
	conds := make([]string, len(cols))
	var args []any
	for i, c := range cols {
		cond, condArgs := c.NotBlank()
		conds[i] = cond
		args = append(args, condArgs...)
	}
	return r.And(strings.Join(conds, " OR "), args...)
}

// where adds the rows' condition to a query. bun refuses a DELETE or an
// UPDATE without a condition, so every row is asked for with TRUE.
func (r Rows) where(q bun.QueryBuilder) bun.QueryBuilder {
	if r.Where == "" {
		return q.Where("TRUE")
	}
	return q.Where(r.Where, r.Args...)
}

// Count counts the rows.
func (r Rows) Count(ctx context.Context, db bun.IDB) (int64, error) {
	n, err := db.NewSelect().TableExpr("?", bun.Ident(r.Table)).ApplyQueryBuilder(r.where).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", r.Table, err)
	}
	return n, nil
}

// Read selects columns of the rows, in the order given, with the rows in
// no particular order. The caller closes the result and checks its Err.
func (r Rows) Read(ctx context.Context, db bun.IDB, columns []string) (*sql.Rows, error) {
	if len(columns) == 0 {
		return nil, fmt.Errorf("read %s: no column named", r.Table)
	}
	q := db.NewSelect().TableExpr("?", bun.Ident(r.Table)).ApplyQueryBuilder(r.where)
	for _, c := range columns {
		q = q.ColumnExpr("?", bun.Ident(c))
	}
	rows, err := q.Rows(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.Table, err)
	}
	return rows, nil
}

// Delete deletes the rows and returns how many it deleted.
func (r Rows) Delete(ctx context.Context, db bun.IDB) (int64, error) {
	res, err := db.NewDelete().TableExpr("?", bun.Ident(r.Table)).ApplyQueryBuilder(r.where).Exec(ctx)
	return affected(res, err, "delete from "+r.Table)
}

// Update makes the assignments in every one of the rows and returns how
// many rows it changed.
func (r Rows) Update(ctx context.Context, db bun.IDB, sets []Assignment) (int64, error) {
	if len(sets) == 0 {
		return 0, fmt.Errorf("update %s: no column to set", r.Table)
	}
	q := db.NewUpdate().TableExpr("?", bun.Ident(r.Table)).ApplyQueryBuilder(r.where)
	for _, a := range sets {
		col := bun.Ident(a.Column)
		if a.KeepNull {
			q = q.Set("? = CASE WHEN ? IS NULL THEN NULL ELSE ? END", col, col, a.Value)
		} else {
			q = q.Set("? = ?", col, a.Value)
		}
	}
	res, err := q.Exec(ctx)
	return affected(res, err, "update "+r.Table)
}

// affected returns the rows a statement changed, or its error wrapped
// with what the statement did.
func affected(res sql.Result, err error, what string) (int64, error) {
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return n, nil
}

// Assignment sets one column of the rows Update changes.
type Assignment struct {
	Column string
	Value  any
	// KeepNull sets Value only where the column holds one and leaves a
	// NULL as it is: erasure puts a pseudonym in place of an identifier
	// only in the rows that name their subject by it.
	KeepNull bool
}
