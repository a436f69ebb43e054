// Package migrationfs reads facts from a folder of golang-migrate files
// without running them, for both stores' migration sets.
package migrationfs

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/golang-migrate/migrate/v4/source/iofs"
)

// Latest is the newest migration version in files: the version a fully
// migrated store reports.
func Latest(files fs.FS) (uint, error) {
	src, err := iofs.New(files, ".")
	if err != nil {
		return 0, fmt.Errorf("read migrations: %w", err)
	}
	defer src.Close()
	v, err := src.First()
	if err != nil {
		return 0, fmt.Errorf("read migrations: %w", err)
	}
	for {
		next, err := src.Next(v)
		if errors.Is(err, fs.ErrNotExist) {
			return v, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read migrations: %w", err)
		}
		v = next
	}
}
