package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/sqlstore"
)

// runMigrate applies (up), rolls back (down) or reports (version) the
// migrations of the SQL store and the warehouse. Down rolls back every
// migration of both stores: it is for development and tests, and asks for
// --yes because it drops all data.
func runMigrate(ctx context.Context, env cmdEnv, args []string) error {
	var yes bool
	cfg, fs, err := config.Load("migrate", args, env.getenv, func(fs *flag.FlagSet, _ *config.Config) {
		fs.BoolVar(&yes, "yes", false, "confirm migrate down, which drops all data")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want one of up, down, version", errUsage)
	}
	action := fs.Arg(0)
	switch action {
	case "up", "version":
	case "down":
		if !yes {
			return fmt.Errorf("%w: migrate down drops every table and all data; add --yes to confirm", errUsage)
		}
	default:
		return fmt.Errorf("%w: unknown action %q, want up, down or version", errUsage, action)
	}
	log := newLogger(cfg, env.stderr)
	if action == "down" && env.live != nil {
		return fmt.Errorf("migrate down needs the stores to itself, and this data dir is served by pid %d: stop the server first", os.Getpid())
	}
	st, release, err := env.stores(ctx, cfg, "steward migrate "+action, log)
	if err != nil {
		return err
	}
	defer release()

	switch action {
	case "up":
		if err := st.migrateUp(ctx); err != nil {
			return err
		}
	case "down":
		err := sqlstore.WithLock(ctx, st.sql, sqlstore.MigrationLock, func(ctx context.Context) error {
			if err := warehouse.Migrate(ctx, st.warehouse, "down"); err != nil {
				return fmt.Errorf("warehouse: %w", err)
			}
			if err := sqlstore.Migrate(ctx, st.sql, "down"); err != nil {
				return fmt.Errorf("sql store: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	// Reading the versions changes nothing: a store never migrated says
	// so and stays as it was.
	sv, sdirty, err := sqlstore.MigrationVersion(ctx, st.sql)
	if err != nil {
		return fmt.Errorf("sql store: %w", err)
	}
	wv, wdirty, err := warehouse.MigrationVersion(ctx, st.warehouse)
	if err != nil && !errors.Is(err, warehouse.ErrNoVersion) {
		return fmt.Errorf("warehouse: %w", err)
	}
	fmt.Fprintf(env.stdout, "sql (%s): %s\n", sqlstore.Dialect(st.sql), versionNote(sv, sdirty))
	fmt.Fprintf(env.stdout, "warehouse (%s): %s\n", st.warehouse.Backend(), versionNote(wv, wdirty))
	return nil
}

// versionNote says which migration a store is at.
func versionNote(v uint, dirty bool) string {
	if v == 0 && !dirty {
		return "not migrated (steward migrate up applies every migration)"
	}
	return fmt.Sprintf("version %d%s", v, dirtyNote(dirty))
}

func dirtyNote(dirty bool) string {
	if dirty {
		return " (dirty: a migration failed midway; fix it by hand, then force the version)"
	}
	return ""
}
