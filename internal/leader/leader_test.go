package leader

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

func TestMain(m *testing.M) { os.Exit(sqltest.Main(m)) }

// waitFor polls cond until it holds; the bound is generous because the
// machine is shared, and the election itself is checked by which process
// leads, not by how fast.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 2 minutes", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// contender is one process's side of the election: its own pool, as a
// separate process has.
func contender(t *testing.T, url string) (*Elector, *bun.DB) {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e, err := New(Config{Name: "test", CheckInterval: 100 * time.Millisecond}, Deps{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	return e, db
}

// lockHolders returns the server processes holding the election's lock.
func lockHolders(t *testing.T, db *bun.DB, key int64) []int {
	t.Helper()
	var pids []int
	err := db.NewSelect().TableExpr("pg_locks").ColumnExpr("pid").
		Where("locktype = 'advisory' AND granted AND objsubid = 1").
		Where("classid::bigint = ? AND objid::bigint = ?", uint32(uint64(key)>>32), uint32(uint64(key))).
		Scan(context.Background(), &pids)
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

func TestOneLeadsAndTheOtherTakesOver(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, dbA := contender(t, url)
	b, _ := contender(t, url)
	one := func() bool { return a.Leading() != b.Leading() }
	waitFor(t, "one of two contenders leads", one)
	leader, follower := a, b
	if b.Leading() {
		leader, follower = b, a
	}
	// The follower keeps trying and keeps failing while the leader lives.
	time.Sleep(500 * time.Millisecond)
	if !leader.Leading() || follower.Leading() {
		t.Fatalf("leader %v, follower %v after five rounds", leader.Leading(), follower.Leading())
	}
	holders := lockHolders(t, dbA, a.key)
	if len(holders) != 1 {
		t.Fatalf("%d sessions hold the lock, want 1", len(holders))
	}
	var app string
	if err := dbA.NewSelect().TableExpr("pg_stat_activity").ColumnExpr("application_name").Where("pid = ?", holders[0]).Scan(context.Background(), &app); err != nil {
		t.Fatal(err)
	}
	if app != applicationPrefix+Instance() {
		t.Errorf("the leader's session is named %q, want %q", app, applicationPrefix+Instance())
	}

	t.Run("the leader's connection ends", func(t *testing.T) {
		// As when the leader's process dies: the server ends its session.
		if _, err := dbA.ExecContext(context.Background(), "SELECT pg_terminate_backend(?)", holders[0]); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the follower takes over", follower.Leading)
		waitFor(t, "the old leader steps down", func() bool { return !leader.Leading() })
		if n := len(lockHolders(t, dbA, a.key)); n != 1 {
			t.Fatalf("%d sessions hold the lock after the hand-over, want 1", n)
		}
		// The old leader does not take the lead back while the new one
		// lives.
		time.Sleep(500 * time.Millisecond)
		if leader.Leading() || !follower.Leading() {
			t.Fatalf("after the hand-over: old leader %v, new leader %v", leader.Leading(), follower.Leading())
		}
		leader, follower = follower, leader
	})

	t.Run("a stopping leader hands over", func(t *testing.T) {
		if err := leader.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if leader.Leading() {
			t.Fatal("a stopped elector still leads")
		}
		waitFor(t, "the other takes over", follower.Leading)
	})
}

func TestSQLiteProcessLeads(t *testing.T) {
	e, err := New(Config{}, Deps{DB: sqltest.OpenEmpty(t, sqlstore.SQLite)})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Stop(context.Background())
	if !e.Leading() {
		t.Fatal("the process serving a SQLite data dir does not lead")
	}
}
