// Package leader elects, among the Steward processes sharing one SQL
// store, the one that runs the periodic jobs: retention, the expiry of
// access packages. Work that many processes may share (privacy requests,
// generations) is claimed row by row instead; a periodic job would run
// once per process without an election.
//
// On PostgreSQL the leader is the process holding a session advisory lock
// on a connection of its own. Every process tries to take the lock each
// CheckInterval; the leader checks each CheckInterval that it still holds
// it. When the leader dies, or its connection ends, the server releases
// the lock and the next follower to try takes over. On SQLite one process
// serves a data dir (the data dir lock keeps others out), so the local
// process is the leader.
//
// Leadership is a hint, not a fence: between the server ending a leader's
// session and the leader's next check, two processes may both believe
// they lead, for up to one CheckInterval. The jobs run under the leader
// are safe to run twice (retention deletes what is past its period; an
// expiry clears a package once, by a conditional update), and retention
// decides whether a run is due from the runs it recorded, not from a
// timer of its own.
package leader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/background"
	"github.com/stewardhq/steward/internal/defaults"
	"github.com/stewardhq/steward/internal/sqlstore"
)

// DefaultCheckInterval is how often a process tries to take the lead, and
// a leader checks it still has it, when Config leaves it zero.
const DefaultCheckInterval = 5 * time.Second

// DefaultName is the name of the election of the periodic jobs.
const DefaultName = "scheduler"

// applicationPrefix starts the application_name of the connection holding
// the lock, so an operator sees the leader in pg_stat_activity.
const applicationPrefix = "steward leader "

// Config tunes the election.
type Config struct {
	// Name names the election; processes electing under one name compete.
	// DefaultName when empty.
	Name string
	// CheckInterval is how often a follower tries to take the lead and the
	// leader checks it still holds it; it bounds the time a dead leader's
	// jobs wait for another process. DefaultCheckInterval when zero.
	CheckInterval time.Duration
}

// Deps is what the elector needs, handed in by cmd/steward.
type Deps struct {
	DB *bun.DB
	// Logger receives a line when this process takes or loses the lead;
	// nil discards them.
	Logger *slog.Logger
}

// Elector takes part in one election for this process.
type Elector struct {
	cfg   Config
	db    *bun.DB
	log   *slog.Logger
	key   int64
	local bool

	leading atomic.Bool

	// mu guards conn, the connection holding the lock while leading.
	mu   sync.Mutex
	conn *bun.Conn

	bg background.Group
}

// New returns the elector of this process; it campaigns once started.
func New(cfg Config, deps Deps) (*Elector, error) {
	if deps.DB == nil {
		return nil, errors.New("leader: DB is required")
	}
	defaults.String(&cfg.Name, DefaultName)
	defaults.Positive(&cfg.CheckInterval, DefaultCheckInterval)
	defaults.Logger(&deps.Logger)
	e := &Elector{cfg: cfg, db: deps.DB, log: deps.Logger, key: sqlstore.LockKey("leader:" + cfg.Name),
		local: sqlstore.Dialect(deps.DB) != sqlstore.Postgres}
	return e, nil
}

// Leading reports whether this process leads now. On SQLite it always
// does.
func (e *Elector) Leading() bool { return e.local || e.leading.Load() }

// Start takes part in the election until Stop: it tries at once, then
// every CheckInterval.
func (e *Elector) Start(ctx context.Context) error {
	if e.local {
		return nil
	}
	if err := e.bg.Start(ctx, e.campaign); err != nil {
		return fmt.Errorf("leader: %w", err)
	}
	return nil
}

// Stop leaves the election and, when leading, hands the lead over at once
// by releasing the lock.
func (e *Elector) Stop(ctx context.Context) error {
	if err := e.bg.Stop(ctx); err != nil {
		return fmt.Errorf("leader: stop: %w", err)
	}
	return nil
}

func (e *Elector) campaign(ctx context.Context) {
	t := time.NewTicker(e.cfg.CheckInterval)
	defer t.Stop()
	defer e.resign(context.WithoutCancel(ctx))
	for {
		if err := e.check(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("leader election", slog.String("election", e.cfg.Name), slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check takes the lead when free, or confirms the lead is still held; a
// leader whose connection fails steps down.
func (e *Elector) check(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		var held bool
		// The lock is held as long as the session lives; reading it back
		// from pg_locks also proves the session is still the same.
		err := e.conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
AND classid::bigint = ? AND objid::bigint = ? AND objsubid = 1)`, uint32(uint64(e.key)>>32), uint32(uint64(e.key))).Scan(&held)
		if err == nil && held {
			return nil
		}
		e.dropLocked()
		e.log.Warn("lost the lead", slog.String("election", e.cfg.Name), slog.String("instance", Instance()))
		if err != nil {
			return fmt.Errorf("check the lead: %w", err)
		}
		return errors.New("check the lead: the lock is no longer held")
	}
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	var won bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock(?)", e.key).Scan(&won); err != nil {
		sqlstore.DiscardConn(conn.Conn)
		return fmt.Errorf("try the lead: %w", err)
	}
	if !won {
		// A follower keeps no connection: the pool serves it again.
		_ = conn.Close()
		return nil
	}
	if _, err := conn.ExecContext(ctx, "SELECT set_config('application_name', ?, false)", applicationPrefix+Instance()); err != nil {
		sqlstore.DiscardConn(conn.Conn)
		return fmt.Errorf("name the leader: %w", err)
	}
	e.conn = &conn
	e.leading.Store(true)
	e.log.Info("leading", slog.String("election", e.cfg.Name), slog.String("instance", Instance()))
	return nil
}

// resign releases the lock, if held, and leaves the connection.
func (e *Elector) resign(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn == nil {
		return
	}
	_, _ = e.conn.ExecContext(ctx, "SELECT pg_advisory_unlock(?)", e.key)
	e.dropLocked()
	e.log.Info("left the lead", slog.String("election", e.cfg.Name), slog.String("instance", Instance()))
}

// dropLocked stops leading and discards the lock's connection, which
// releases the lock if the session still lives. e.mu is held.
func (e *Elector) dropLocked() {
	e.leading.Store(false)
	sqlstore.DiscardConn(e.conn.Conn)
	e.conn = nil
}

var instance = sync.OnceValue(func() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
})

// Instance names this process among the instances sharing the stores: its
// host name, process id and a random suffix (process ids are reused). It
// names the leader in logs and in pg_stat_activity, and the holder of a
// claim on shared work.
func Instance() string { return instance() }
