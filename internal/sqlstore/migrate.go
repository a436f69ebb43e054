package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/stewardhq/steward/internal/migrationfs"
	sqlmigrations "github.com/stewardhq/steward/migrations/sql"
)

// Migration targets accepted by Migrate besides a version number.
const (
	// Up applies every migration not yet applied.
	Up = "up"
	// Down reverts every applied migration, leaving no tables of ours.
	Down = "down"
)

// MigrationsTable is golang-migrate's own version table. Columns leaves it
// out: it belongs to the tool, not to the data map.
const MigrationsTable = "schema_migrations"

// Migrate moves the schema to target: "up" (everything), "down" (nothing:
// every migration reverted) or a version number such as "3", reached by
// going up or down from the current version. Being at the target already
// is not an error. A migration that fails leaves the database marked
// dirty at that version, and Migrate refuses to run again until someone
// has repaired the schema by hand; the error says so.
//
// Cancelling ctx stops after the migration in progress.
func Migrate(ctx context.Context, db *bun.DB, target string) error {
	var step func(m *migrate.Migrate) error
	switch target {
	case Up:
		step = (*migrate.Migrate).Up
	case Down:
		step = (*migrate.Migrate).Down
	default:
		v, err := strconv.ParseUint(target, 10, 32)
		if err != nil {
			return fmt.Errorf("migrate: unknown target %q: want %q, %q or a version number", target, Up, Down)
		}
		step = func(m *migrate.Migrate) error { return m.Migrate(uint(v)) }
	}
	return withMigrate(ctx, db, func(m *migrate.Migrate) error {
		stop := context.AfterFunc(ctx, func() { m.GracefulStop <- true })
		defer stop()
		err := step(m)
		switch {
		case errors.Is(err, migrate.ErrNoChange):
			return nil
		case err != nil:
			var dirty migrate.ErrDirty
			if errors.As(err, &dirty) {
				return fmt.Errorf("migrate %s: the database is marked dirty at version %d after a failed migration; repair the schema by hand, then set the version in %s: %w", target, dirty.Version, MigrationsTable, err)
			}
			return fmt.Errorf("migrate %s: %w", target, err)
		}
		// A graceful stop ends the run early without an error of its own.
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("migrate %s: stopped: %w", target, err)
		}
		return nil
	})
}

// MigrationVersion reports the last migration applied and whether it
// failed half-way (dirty). A database with no migration applied reports
// version 0: migration numbers start at 1. It only reads: a database
// without golang-migrate's version table is left without one.
func MigrationVersion(ctx context.Context, db *bun.DB) (version uint, dirty bool, err error) {
	var exists bool
	q := "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)"
	if db.Dialect().Name() == dialect.PG {
		q = "SELECT to_regclass(?) IS NOT NULL"
	}
	if err := db.QueryRowContext(ctx, q, MigrationsTable).Scan(&exists); err != nil {
		return 0, false, fmt.Errorf("migration version: %w", err)
	}
	if !exists {
		return 0, false, nil
	}
	var v int64
	err = db.QueryRowContext(ctx, "SELECT version, dirty FROM "+MigrationsTable+" LIMIT 1").Scan(&v, &dirty)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("migration version: %w", err)
	case v < 0:
		return 0, false, nil
	}
	return uint(v), dirty, nil
}

// withMigrate runs fn with a golang-migrate instance over db and the
// migrations of db's dialect.
//
// golang-migrate's database drivers close the *sql.DB they were given when
// the instance is closed, and the pgx driver also holds one connection of
// it for its advisory lock until then. So the shared pool is never handed
// over to be closed:
//   - SQLite: the driver keeps nothing but the pool, so the instance is
//     simply not closed (its source is).
//   - PostgreSQL: the instance gets a pool of its own, built from the
//     settings of a live connection of db, and closing the instance closes
//     that pool and the lock connection with it.
func withMigrate(ctx context.Context, db *bun.DB, fn func(m *migrate.Migrate) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dialect := Dialect(db)
	files, err := sqlmigrations.Source(dialect)
	if err != nil {
		return err
	}
	src, err := iofs.New(files, ".")
	if err != nil {
		return fmt.Errorf("read migrations: %w", err)
	}

	var (
		drv database.Driver
		// release frees what the instance holds, never db itself.
		release func() error
	)
	switch dialect {
	case SQLite:
		drv, err = migratesqlite.WithInstance(db.DB, &migratesqlite.Config{MigrationsTable: MigrationsTable})
		release = src.Close
	case Postgres:
		own, oerr := dedicatedPostgres(ctx, db.DB)
		if oerr != nil {
			_ = src.Close()
			return oerr
		}
		drv, err = migratepgx.WithInstance(own, &migratepgx.Config{MigrationsTable: MigrationsTable})
		if err != nil {
			_ = own.Close()
		}
		// The driver's Close closes own and its lock connection.
		release = func() error { return errors.Join(src.Close(), drv.Close()) }
	default:
		err = fmt.Errorf("unsupported dialect %s", dialect)
	}
	if err != nil {
		_ = src.Close()
		return fmt.Errorf("migrate: open %s: %w", dialect, err)
	}

	m, err := migrate.NewWithInstance("iofs", src, dialect, drv)
	if err != nil {
		_ = release()
		return fmt.Errorf("migrate: %w", err)
	}
	err = fn(m)
	if rerr := release(); rerr != nil {
		err = errors.Join(err, fmt.Errorf("migrate: release: %w", rerr))
	}
	return err
}

// dedicatedPostgres opens a small pool to the same server, database and
// user as db, with the connection settings pgx resolved for db (URL,
// environment and defaults alike).
func dedicatedPostgres(ctx context.Context, db *sql.DB) (*sql.DB, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close()
	var cfg *pgx.ConnConfig
	err = conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("migrate: postgres connection is a %T, not a pgx connection", driverConn)
		}
		cfg = c.Conn().Config()
		return nil
	})
	if err != nil {
		return nil, err
	}
	own := stdlib.OpenDB(*cfg)
	// One connection for the lock and the migrations, one for the queries
	// golang-migrate sends outside it.
	own.SetMaxOpenConns(2)
	return own, nil
}

// LatestVersion is the number of the newest migration of db's dialect:
// the version a fully migrated store reports.
func LatestVersion(db *bun.DB) (uint, error) {
	files, err := sqlmigrations.Source(Dialect(db))
	if err != nil {
		return 0, err
	}
	return migrationfs.Latest(files)
}
