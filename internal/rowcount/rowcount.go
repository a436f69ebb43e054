// Package rowcount turns the rows a SQL statement found or changed into
// the stores' answers: a select that should find one row, and a statement
// that changes a row only when a condition holds (an insert that skips a
// conflict, an update guarded by its WHERE clause).
package rowcount

import (
	"database/sql"
	"errors"
	"fmt"
)

// Found returns the error of a select, err, that should have found one
// row: notFound when it found none, err wrapped with what when it failed,
// nil when it found the row.
func Found(err, notFound error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return notFound
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// One reports whether the statement that returned res and err changed
// exactly one row. A statement error, or a driver that cannot count, is
// returned wrapped with what.
func One(res sql.Result, err error, what string) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	return n == 1, nil
}
