package sqlstore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

// TestWithLockExcludesOtherProcesses holds the migration lock from one
// pool, as one process would, and checks that a second pool's WithLock
// waits on the server until the first lets go, then runs.
func TestWithLockExcludesOtherProcesses(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	a, err := sqlstore.Open(ctx, sqlstore.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlstore.Open(ctx, sqlstore.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	release := make(chan struct{})
	holding := make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- sqlstore.WithLock(ctx, a, sqlstore.MigrationLock, func(context.Context) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	var secondRan atomic.Bool
	secondDone := make(chan error, 1)
	go func() {
		secondDone <- sqlstore.WithLock(ctx, b, sqlstore.MigrationLock, func(context.Context) error {
			secondRan.Store(true)
			return nil
		})
	}()
	// The second waits on the server: its request shows in pg_locks as
	// not granted.
	key := sqlstore.LockKey(sqlstore.MigrationLock)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var waiting int
		err := a.NewSelect().TableExpr("pg_locks").ColumnExpr("count(*)").
			Where("locktype = 'advisory' AND NOT granted").
			Where("classid::bigint = ? AND objid::bigint = ?", uint32(uint64(key)>>32), uint32(uint64(key))).
			Scan(ctx, &waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second process never waited for the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if secondRan.Load() {
		t.Fatal("the second process ran while the first held the lock")
	}
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	if err := <-secondDone; err != nil || !secondRan.Load() {
		t.Fatalf("second WithLock = %v, ran %v", err, secondRan.Load())
	}
}

func TestWithLockOnSQLiteRuns(t *testing.T) {
	db := sqltest.OpenEmpty(t, sqlstore.SQLite)
	ran := false
	if err := sqlstore.WithLock(context.Background(), db, sqlstore.MigrationLock, func(context.Context) error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("WithLock = %v, ran %v", err, ran)
	}
}
