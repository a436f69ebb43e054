package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/blob"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/control"
	"github.com/stewardhq/steward/internal/datadir"
	"github.com/stewardhq/steward/internal/sqlstore"
)

// stores are the opened SQL store, analytics warehouse and file store of
// one process, with the data dir lock that guards the embedded engine.
type stores struct {
	sql       *bun.DB
	warehouse warehouse.Warehouse
	files     *blob.Store
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
			if errors.Is(err, datadir.ErrInUse) {
				return nil, &servedError{socket: control.SocketPath(cfg.DataDir), err: err}
			}
			return nil, fmt.Errorf("data dir (STEWARD_DATA_DIR): %w", err)
		}
	}
	if s.sql, err = sqlstore.Open(ctx, sqlstore.Config{URL: cfg.DatabaseURL, DataDir: cfg.DataDir}); err != nil {
		return nil, fmt.Errorf("open sql store (%s): %w", sqlSetting(cfg), err)
	}
	s.warehouse, err = warehouse.Open(ctx, warehouse.Config{
		URL:      cfg.ClickHouseURL,
		DataDir:  cfg.DataDir,
		LibPath:  cfg.CHDBLib,
		Database: cfg.ClickHouseDatabase,
	})
	if err != nil {
		return nil, fmt.Errorf("open warehouse (%s): %w", warehouseSetting(cfg), err)
	}
	if err := warehouse.CheckServerVersion(s.warehouse); err != nil {
		return nil, fmt.Errorf("open warehouse (%s): %w", warehouseSetting(cfg), err)
	}
	if s.files, err = blob.Open(ctx, blobURL(cfg)); err != nil {
		return nil, fmt.Errorf("open file store (STEWARD_BLOB_URL): %w", err)
	}
	log.InfoContext(ctx, "stores open",
		slog.String("sql", sqlstore.Dialect(s.sql)),
		slog.String("warehouse", s.warehouse.Backend()),
		slog.String("warehouse_database", s.warehouse.Database()),
		slog.String("files", s.files.String()))
	if !cfg.EmbeddedSQL() && cfg.BlobURL == "" {
		log.WarnContext(ctx, "files are kept in this instance's data dir; every instance sharing the SQL store needs the same STEWARD_BLOB_URL")
	}
	return s, nil
}

// blobURL is the file store a configuration names: STEWARD_BLOB_URL, or
// the data dir itself, where uploads (files/) and packages (exports/)
// have always been.
func blobURL(cfg config.Config) string {
	if cfg.BlobURL != "" {
		return cfg.BlobURL
	}
	return "file://" + cfg.DataDir
}

// migrateUp applies every pending migration to both stores, holding the
// migration lock: of the processes starting at once on one PostgreSQL
// database and ClickHouse server, one migrates and the others wait.
func (s *stores) migrateUp(ctx context.Context) error {
	return sqlstore.WithLock(ctx, s.sql, sqlstore.MigrationLock, func(ctx context.Context) error {
		if err := s.migrateSQL(ctx); err != nil {
			return err
		}
		if err := warehouse.Migrate(ctx, s.warehouse, "up"); err != nil {
			return fmt.Errorf("warehouse: %w", err)
		}
		return nil
	})
}

// migrateSQL applies every pending migration to the SQL store.
func (s *stores) migrateSQL(ctx context.Context) error {
	if err := sqlstore.Migrate(ctx, s.sql, sqlstore.Up); err != nil {
		return fmt.Errorf("sql store: %w", err)
	}
	return nil
}

// schemaProblems names each store whose schema is behind the migrations
// this binary carries, as data map problems.
func (s *stores) schemaProblems(ctx context.Context) ([]datamap.Problem, error) {
	var out []datamap.Problem
	sqlAt, _, err := sqlstore.MigrationVersion(ctx, s.sql)
	if err != nil {
		return nil, fmt.Errorf("sql store: %w", err)
	}
	sqlLatest, err := sqlstore.LatestVersion(s.sql)
	if err != nil {
		return nil, err
	}
	if sqlAt < sqlLatest {
		out = append(out, notMigrated(datamap.StoreSQL, sqlAt, sqlLatest))
	}
	whAt, _, err := warehouse.MigrationVersion(ctx, s.warehouse)
	if err != nil && !errors.Is(err, warehouse.ErrNoVersion) {
		return nil, fmt.Errorf("warehouse: %w", err)
	}
	whLatest, err := warehouse.LatestVersion()
	if err != nil {
		return nil, err
	}
	if whAt < whLatest {
		out = append(out, notMigrated(datamap.StoreWarehouse, whAt, whLatest))
	}
	return out, nil
}

// requireSQLSchema refuses a SQL store behind its migrations: the modules
// read their settings and tables as soon as they are built.
func (s *stores) requireSQLSchema(ctx context.Context) error {
	at, _, err := sqlstore.MigrationVersion(ctx, s.sql)
	if err != nil {
		return fmt.Errorf("sql store: %w", err)
	}
	latest, err := sqlstore.LatestVersion(s.sql)
	if err != nil {
		return err
	}
	if at < latest {
		return fmt.Errorf("the SQL store is at migration %d of %d: run steward migrate up (STEWARD_AUTO_MIGRATE is off)", at, latest)
	}
	return nil
}

func notMigrated(store string, at, latest uint) datamap.Problem {
	return datamap.Problem{Store: store, Rule: "not-migrated",
		Message: fmt.Sprintf("the %s schema is at migration %d of %d, so tables may be missing from the map; run steward migrate up", store, at, latest)}
}

func (s *stores) close() error {
	var errs []error
	if s.files != nil {
		if err := s.files.Close(); err != nil {
			errs = append(errs, err)
		}
	}
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

// servedError is the refusal of a data dir another process holds. When
// that process serves, the command goes through its control channel.
type servedError struct {
	socket string
	err    error
}

func (e *servedError) Error() string { return e.err.Error() }
func (e *servedError) Unwrap() error { return e.err }

// stores gives a command the SQL store and the warehouse: its own, opened
// for it, or the serving process's when it runs inside one. release closes
// what was opened for it.
func (env cmdEnv) stores(ctx context.Context, cfg config.Config, purpose string, log *slog.Logger) (st *stores, release func(), err error) {
	if env.live != nil {
		if err := env.live.sameStores(cfg); err != nil {
			return nil, nil, err
		}
		return env.live.stores, func() {}, nil
	}
	st, err = openStores(ctx, cfg, purpose, log)
	if err != nil {
		return nil, nil, err
	}
	return st, func() { _ = st.close() }, nil
}

// server gives a command a wired server: one built for it, or the serving
// process's own, whose modules, caches and workers the command then
// shares. release closes what was built for it.
func (env cmdEnv) server(ctx context.Context, cfg config.Config, log *slog.Logger) (srv *server, release func(), err error) {
	if env.live != nil {
		if err := env.live.sameStores(cfg); err != nil {
			return nil, nil, err
		}
		return env.live, func() {}, nil
	}
	srv, err = newServer(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	return srv, func() { _ = srv.close(context.Background()) }, nil
}

// sameStores refuses a command whose settings name other stores than the
// ones this serving process has open: it would otherwise run, silently,
// on stores its operator did not name.
func (s *server) sameStores(cfg config.Config) error {
	for _, c := range []struct{ name, got, want string }{
		{"--database-url (STEWARD_DATABASE_URL)", cfg.DatabaseURL, s.cfg.DatabaseURL},
		{"--clickhouse-url (STEWARD_CLICKHOUSE_URL)", cfg.ClickHouseURL, s.cfg.ClickHouseURL},
		{"--clickhouse-database (STEWARD_CLICKHOUSE_DATABASE)", cfg.ClickHouseDatabase, s.cfg.ClickHouseDatabase},
		{"--blob-url (STEWARD_BLOB_URL)", cfg.BlobURL, s.cfg.BlobURL},
	} {
		if c.got != c.want {
			return fmt.Errorf("this data dir is served with another %s than the command names; run the command with the server's settings, or stop the server", c.name)
		}
	}
	return nil
}

// sqlSetting names the SQL store a configuration selects and the setting
// that selects it, for messages. A URL is shown without its password.
func sqlSetting(cfg config.Config) string {
	if cfg.DatabaseURL == "" {
		return "SQLite in the data dir " + cfg.DataDir + ", STEWARD_DATA_DIR"
	}
	return "PostgreSQL at " + redactURL(cfg.DatabaseURL) + ", STEWARD_DATABASE_URL"
}

// warehouseSetting names the warehouse a configuration selects and the
// setting that selects it, for messages.
func warehouseSetting(cfg config.Config) string {
	if cfg.EmbeddedWarehouse() {
		return "embedded ClickHouse engine from " + cfg.CHDBLib + ", STEWARD_CHDB_LIB"
	}
	return "ClickHouse server at " + redactURL(cfg.ClickHouseURL) + ", STEWARD_CLICKHOUSE_URL"
}

// redactURL drops the password from a store URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "an unreadable URL"
	}
	return u.Redacted()
}
