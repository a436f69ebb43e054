package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/datadir"
	"github.com/stewardhq/steward/internal/sqlstore"
)

// stores are the opened SQL store and analytics warehouse of one process,
// with the data dir lock that guards the embedded engine.
type stores struct {
	sql       *bun.DB
	warehouse warehouse.Warehouse
	lock      *datadir.Lock
}

// openStores opens the SQL store and the warehouse as configured. The
// embedded engine allows one process per data dir, so the data dir lock is
// taken before it is loaded and a second process is told who holds it.
func openStores(ctx context.Context, cfg config.Config, purpose string, log *slog.Logger) (_ *stores, err error) {
	s := &stores{}
	defer func() {
		if err != nil {
			_ = s.close()
		}
	}()
	if cfg.EmbeddedWarehouse() {
		if s.lock, err = datadir.Acquire(cfg.DataDir, purpose); err != nil {
			return nil, err
		}
	}
	if s.sql, err = sqlstore.Open(ctx, sqlstore.Config{URL: cfg.DatabaseURL, DataDir: cfg.DataDir}); err != nil {
		return nil, fmt.Errorf("open sql store: %w", err)
	}
	s.warehouse, err = warehouse.Open(ctx, warehouse.Config{
		URL:      cfg.ClickHouseURL,
		DataDir:  cfg.DataDir,
		LibPath:  cfg.CHDBLib,
		Database: cfg.ClickHouseDatabase,
	})
	if err != nil {
		return nil, fmt.Errorf("open warehouse: %w", err)
	}
	log.InfoContext(ctx, "stores open",
		slog.String("sql", sqlstore.Dialect(s.sql)),
		slog.String("warehouse", s.warehouse.Backend()),
		slog.String("warehouse_database", s.warehouse.Database()))
	return s, nil
}

// migrateUp applies every pending migration to both stores.
func (s *stores) migrateUp(ctx context.Context) error {
	if err := s.migrateSQL(ctx); err != nil {
		return err
	}
	if err := warehouse.Migrate(ctx, s.warehouse, "up"); err != nil {
		return fmt.Errorf("warehouse: %w", err)
	}
	return nil
}

// migrateSQL applies every pending migration to the SQL store.
func (s *stores) migrateSQL(ctx context.Context) error {
	if err := sqlstore.Migrate(ctx, s.sql, sqlstore.Up); err != nil {
		return fmt.Errorf("sql store: %w", err)
	}
	return nil
}

func (s *stores) close() error {
	var errs []error
	if s.warehouse != nil {
		if err := s.warehouse.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close warehouse: %w", err))
		}
	}
	if s.sql != nil {
		if err := s.sql.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close sql store: %w", err))
		}
	}
	if err := s.lock.Release(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
