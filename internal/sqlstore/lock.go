package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/uptrace/bun"
)

// MigrationLock names the lock held around the migrations of both stores
// (see WithLock). golang-migrate's PostgreSQL driver locks the SQL store's
// migrations across processes on its own, but nothing locks the
// warehouse's on a shared ClickHouse server; holding this lock around both
// lets one process migrate while the others wait and then find nothing to
// do.
const MigrationLock = "migrate"

// LockKey is the key of PostgreSQL's advisory lock functions for the lock
// called name: 64 bits of FNV-1a over a prefix of ours and the name, so
// that other applications on the same database are unlikely to collide
// with us.
func LockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("steward\x00"))
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// WithLock runs fn while this process holds the lock called name, waiting
// for it as long as ctx allows. On PostgreSQL the lock is a session
// advisory lock on a connection taken from db for the purpose, so it
// excludes every process using the same database and goes away with the
// connection if this process dies. On SQLite fn simply runs: one process
// serves a data dir, and the data dir lock keeps any other out.
func WithLock(ctx context.Context, db *bun.DB, name string, fn func(ctx context.Context) error) error {
	if Dialect(db) != Postgres {
		return fn(ctx)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("lock %s: connect: %w", name, err)
	}
	key := LockKey(name)
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", key); err != nil {
		// A wait cut short may have left the lock half taken.
		DiscardConn(conn.Conn)
		return fmt.Errorf("lock %s: %w", name, err)
	}
	err = fn(ctx)
	var released bool
	if uerr := conn.QueryRowContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", key).Scan(&released); uerr != nil || !released {
		// Ending the session releases the lock for sure.
		DiscardConn(conn.Conn)
		if uerr != nil {
			err = errors.Join(err, fmt.Errorf("unlock %s: %w", name, uerr))
		}
		return err
	}
	_ = conn.Close()
	return err
}

// DiscardConn closes conn and takes it out of its pool rather than
// returning it: a session that held advisory locks or changed its
// settings must not serve anyone else.
func DiscardConn(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}
