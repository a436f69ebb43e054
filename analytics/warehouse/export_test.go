package warehouse

import (
	"context"
	"fmt"
)

// MigrateToVersion applies or reverts migrations until w's database is at
// version, as an upgrade from an older release finds it.
func MigrateToVersion(ctx context.Context, w Warehouse, version uint) error {
	m, err := newMigrator(ctx, w)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Migrate(version); err != nil {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	return nil
}

// WrittenInGo reports whether the embedded SelectFormats writes a column
// of type t, as RowBinaryWithNamesAndTypes names it, in Go.
func WrittenInGo(t string) bool {
	_, ok := parseTextType(t)
	return ok
}
