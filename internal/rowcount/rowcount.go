// Package rowcount reads how many rows a SQL statement changed, for the
// stores whose statements change a row only when a condition holds (an
// insert that skips a conflict, an update guarded by its WHERE clause).
package rowcount

import (
	"database/sql"
	"fmt"
)

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
