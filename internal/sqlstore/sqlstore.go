// Package sqlstore provides the SQL store: it opens SQLite (the embedded
// default, a file in the data dir) or PostgreSQL as a *bun.DB, runs the
// migrations of package sqlmigrations on it, and reads back the live schema
// so the data map can check that every stored column carries a category.
//
// The same migrations and the same bun code serve both dialects; only Open
// and the migration files know which one is in use.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"

	// The modernc driver registers itself as "sqlite" with database/sql.
	_ "modernc.org/sqlite"
)

// Config says which SQL store to open.
type Config struct {
	// URL selects PostgreSQL when it starts with postgres:// or
	// postgresql://. Empty selects SQLite in DataDir.
	URL string
	// DataDir holds the SQLite file steward.db. It is created if missing.
	DataDir string
}

// SQLiteFile is the name of the SQLite database inside the data dir.
const SQLiteFile = "steward.db"

// Dialect names returned by Dialect.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// SQLite connection settings.
//
// Every connection runs the same pragmas, set in the DSN so the driver
// applies them to each new connection of the pool, not once to whichever
// connection happened to run a PRAGMA statement:
//   - journal_mode(WAL): readers never block the writer or each other.
//   - foreign_keys(1): SQLite ignores REFERENCES clauses otherwise.
//   - busy_timeout(5000): a connection that finds the database locked
//     waits up to 5 s for it instead of failing at once with SQLITE_BUSY.
//   - synchronous(NORMAL): in WAL mode this stays consistent after a crash
//     and only risks the last commits on power loss, without an fsync per
//     commit.
//
// _txlock=immediate makes BEGIN take the write lock at once. A deferred
// transaction that reads first and writes later cannot wait for the lock
// when another connection wrote in between (SQLite answers SQLITE_BUSY at
// once, busy_timeout or not), so read-modify-write transactions would fail
// under concurrency; taken up front, the lock is simply waited for. The
// price: a transaction that only reads also queues behind writers, so
// reads should run outside transactions.
//
// The pool allows sqliteMaxConns connections. WAL lets them read
// concurrently while SQLite itself admits one writer at a time; the others
// wait through busy_timeout, which is the queue. A single connection would
// also serialise reads and deadlock any code that queries the database
// while it holds a transaction on the same pool.
const (
	sqlitePragmas  = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	sqliteMaxConns = 8
)

// PostgreSQL pool settings: enough connections for the API's concurrency
// without crowding the server's default max_connections of 100, and
// connections recycled now and then so a server-side restart or failover
// is picked up.
const (
	pgMaxOpenConns    = 20
	pgMaxIdleConns    = 10
	pgConnMaxLifetime = 30 * time.Minute
	pgConnMaxIdleTime = 5 * time.Minute
)

// Open opens the store cfg names and checks that it answers. The caller
// closes the returned DB.
func Open(ctx context.Context, cfg Config) (*bun.DB, error) {
	switch {
	case cfg.URL == "":
		return openSQLite(ctx, cfg.DataDir)
	case strings.HasPrefix(cfg.URL, "postgres://"), strings.HasPrefix(cfg.URL, "postgresql://"):
		return openPostgres(ctx, cfg.URL)
	default:
		// The URL may carry a password: name its scheme only.
		scheme := "(none)"
		if u, err := url.Parse(cfg.URL); err == nil && u.Scheme != "" {
			scheme = u.Scheme
		}
		return nil, fmt.Errorf("open sql store: unsupported database URL scheme %s: want postgres:// or postgresql://, or no URL for SQLite in the data dir", scheme)
	}
}

func openSQLite(ctx context.Context, dataDir string) (*bun.DB, error) {
	if dataDir == "" {
		return nil, errors.New("open sqlite: data dir is empty")
	}
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	// The driver splits its DSN at the first '?', so such a path would be
	// cut short and open another file.
	if strings.Contains(dir, "?") {
		return nil, fmt.Errorf("open sqlite: data dir %s contains '?', which SQLite file names cannot", dir)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite: create data dir: %w", err)
	}
	sqldb, err := sql.Open("sqlite", filepath.Join(dir, SQLiteFile)+"?"+sqlitePragmas)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	sqldb.SetMaxOpenConns(sqliteMaxConns)
	// Idle connections are kept: each new one would run the pragmas again.
	sqldb.SetMaxIdleConns(sqliteMaxConns)
	return finishOpen(ctx, bun.NewDB(sqldb, sqlitedialect.New()), "sqlite")
}

func openPostgres(ctx context.Context, rawURL string) (*bun.DB, error) {
	// pgx redacts the password in its parse errors.
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(pgMaxOpenConns)
	sqldb.SetMaxIdleConns(pgMaxIdleConns)
	sqldb.SetConnMaxLifetime(pgConnMaxLifetime)
	sqldb.SetConnMaxIdleTime(pgConnMaxIdleTime)
	return finishOpen(ctx, bun.NewDB(sqldb, pgdialect.New()), "postgres")
}

// finishOpen pings db so a wrong path, host or password, or a file that is
// not a database, shows at start-up rather than at the first request.
func finishOpen(ctx context.Context, db *bun.DB, what string) (*bun.DB, error) {
	if err := Ping(ctx, db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s: %w", what, err)
	}
	return db, nil
}

// Dialect names the dialect of a DB opened by Open: "sqlite" or
// "postgres".
func Dialect(db *bun.DB) string {
	switch name := db.Dialect().Name(); name {
	case dialect.SQLite:
		return SQLite
	case dialect.PG:
		return Postgres
	default:
		return name.String()
	}
}

// Ping checks that the store answers a query. On SQLite the query reads
// the schema, so a damaged or foreign file fails here and not only a
// missing one.
func Ping(ctx context.Context, db *bun.DB) error {
	query := "SELECT 1"
	if Dialect(db) == SQLite {
		query = "SELECT count(*) FROM sqlite_master"
	}
	var n int
	if err := db.QueryRowContext(ctx, query).Scan(&n); err != nil {
		return fmt.Errorf("ping %s: %w", Dialect(db), err)
	}
	return nil
}
