package sqlstore_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

func TestMain(m *testing.M) { os.Exit(sqltest.Main(m)) }

// openAnswering opens the store cfg names, closed when the test ends, and
// checks that it is of dialect and answers a ping.
func openAnswering(t *testing.T, cfg sqlstore.Config, dialect string) {
	t.Helper()
	db, err := sqlstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if got := sqlstore.Dialect(db); got != dialect {
		t.Errorf("dialect = %q, want %q", got, dialect)
	}
	if err := sqlstore.Ping(t.Context(), db); err != nil {
		t.Errorf("ping: %v", err)
	}
}

func TestOpenSQLiteCreatesDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing", "var")
	openAnswering(t, sqlstore.Config{DataDir: dir}, sqlstore.SQLite)
	if _, err := os.Stat(filepath.Join(dir, sqlstore.SQLiteFile)); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestOpenSQLiteRefusesForeignFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, sqlstore.SQLiteFile), []byte(strings.Repeat("not a database ", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sqlstore.Open(t.Context(), sqlstore.Config{DataDir: dir})
	if err == nil {
		db.Close()
		t.Fatal("open accepted a file that is not a database")
	}
}

func TestOpenPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	tests := []struct {
		name string
		url  string
	}{
		{name: "postgres scheme", url: url},
		{name: "postgresql scheme", url: "postgresql" + strings.TrimPrefix(url, "postgres")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			openAnswering(t, sqlstore.Config{URL: tt.url, DataDir: t.TempDir()}, sqlstore.Postgres)
		})
	}
}

func TestOpenFails(t *testing.T) {
	// A port nothing listens on: taken, then released.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()

	tests := []struct {
		name string
		cfg  sqlstore.Config
	}{
		{name: "unsupported scheme", cfg: sqlstore.Config{URL: "mysql://steward:s3cret-pw@db.example/steward"}},
		{name: "not a URL", cfg: sqlstore.Config{URL: "s3cret-pw"}},
		{name: "no data dir for sqlite", cfg: sqlstore.Config{}},
		{name: "data dir sqlite cannot name", cfg: sqlstore.Config{DataDir: filepath.Join(t.TempDir(), "a?b")}},
		{name: "postgres not reachable", cfg: sqlstore.Config{URL: "postgres://steward:s3cret-pw@127.0.0.1:" + itoa(closedPort) + "/steward?sslmode=disable&connect_timeout=10"}},
		{name: "malformed postgres URL", cfg: sqlstore.Config{URL: "postgres://steward:s3cret-pw@127.0.0.1:notaport/steward"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := sqlstore.Open(t.Context(), tt.cfg)
			if err == nil {
				db.Close()
				t.Fatal("open succeeded")
			}
			// Errors reach logs; a password in the URL must not.
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// TestSQLitePragmasOnEveryConnection holds every connection the pool may
// open at once, so each pragma is read from each of them.
func TestSQLitePragmasOnEveryConnection(t *testing.T) {
	db := sqltest.SQLite(t)
	ctx := t.Context()
	n := db.Stats().MaxOpenConnections
	if n < 2 {
		t.Fatalf("pool allows %d connection(s); readers would queue behind the writer", n)
	}
	conns := make([]*bun.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatalf("conn: %v", err)
		}
		conns = append(conns, &c)
	}
	if got := db.Stats().OpenConnections; got != n {
		t.Fatalf("open connections = %d, want %d distinct ones", got, n)
	}
	want := map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"busy_timeout": "5000",
		"synchronous":  "1", // NORMAL
	}
	for i, c := range conns {
		for pragma, value := range want {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("connection %d: pragma %s: %v", i, pragma, err)
			}
			if got != value {
				t.Errorf("connection %d: %s = %q, want %q", i, pragma, got, value)
			}
		}
	}
}

// TestSQLiteEnforcesForeignKeys checks the effect, not only the pragma.
func TestSQLiteEnforcesForeignKeys(t *testing.T) {
	db := sqltest.SQLite(t)
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, "CREATE TABLE parent (id INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE child (parent_id INTEGER NOT NULL REFERENCES parent (id))"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO child (parent_id) VALUES (42)"); err == nil {
		t.Error("insert with a dangling reference succeeded")
	}
}

// TestSQLiteConcurrentWriters runs plain inserts and read-modify-write
// transactions from many goroutines at once; every one must succeed and
// no update may be lost.
func TestSQLiteConcurrentWriters(t *testing.T) {
	db := sqltest.SQLite(t)
	ctx := t.Context()
	const (
		writers = 8
		each    = 50
	)
	counter := &sqlstore.Setting{Key: "counter", Value: "0", UpdatedAt: now()}
	if _, err := db.NewInsert().Model(counter).Exec(ctx); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rec := decision(itoa(w)+"-"+itoa(i), now())
				if _, err := db.NewInsert().Model(rec).Exec(ctx); err != nil {
					errs <- err
				}
				err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					var s sqlstore.Setting
					if err := tx.NewSelect().Model(&s).Where("key = ?", "counter").Scan(ctx); err != nil {
						return err
					}
					s.Value = itoa(atoi(t, s.Value) + 1)
					s.UpdatedAt = now()
					_, err := tx.NewUpdate().Model(&s).WherePK().Exec(ctx)
					return err
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("write failed: %v", err)
	}

	n, err := db.NewSelect().Model((*sqlstore.DecisionRecord)(nil)).Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != writers*each {
		t.Errorf("rows = %d, want %d", n, writers*each)
	}
	var s sqlstore.Setting
	if err := db.NewSelect().Model(&s).Where("key = ?", "counter").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Value != itoa(writers*each) {
		t.Errorf("counter = %s, want %d: updates were lost", s.Value, writers*each)
	}
}
