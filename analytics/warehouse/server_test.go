package warehouse_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/testutil/chtest"
)

// The server tests check the clickhouse-go backend against a real server
// speaking the native protocol. The server available here is Debian's
// ClickHouse 18.16, so the tables use what it supports (DateTime, no
// DateTime64, LowCardinality or TTL), rows go in through batches (its Exec of
// INSERT ... VALUES hangs) and the subject is deleted with an ALTER TABLE
// mutation (it has no lightweight DELETE). The events schema itself is
// tested on the embedded engine.

type visit struct {
	VisitorID string    `ch:"visitor_id"`
	VisitedAt time.Time `ch:"visited_at"`
	Path      string    `ch:"path"`
	Tags      []string  `ch:"tags"`
	UserID    *string   `ch:"user_id"`
	Seq       uint64    `ch:"seq"`
}

var visitColumns = []string{"visitor_id", "visited_at", "path", "tags", "user_id", "seq"}

func openServer(t *testing.T, database string) warehouse.Warehouse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := warehouse.Open(ctx, warehouse.Config{URL: chtest.ServerURL(t, database)})
	if err != nil {
		t.Fatalf("open server warehouse: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Exec(context.Background(), "DROP DATABASE IF EXISTS "+database); err != nil {
			t.Errorf("drop %s: %v", database, err)
		}
		w.Close()
	})
	return w
}

func TestServerContract(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	w := openServer(t, "contract")
	if w.Backend() != warehouse.BackendServer || w.Database() != "contract" {
		t.Fatalf("Backend, Database = %q, %q", w.Backend(), w.Database())
	}
	if err := w.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Exec(ctx, `CREATE TABLE visits (
			visitor_id String, visited_at DateTime, path String, tags Array(String),
			user_id Nullable(String), seq UInt64)
		ENGINE = MergeTree() PARTITION BY toYYYYMM(visited_at) ORDER BY (visitor_id, visited_at)`); err != nil {
		t.Fatal(err)
	}

	base := time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)
	var want []visit
	for i := range 500 {
		v := visit{
			VisitorID: fmt.Sprintf("v-%d", i%5),
			VisitedAt: base.Add(time.Duration(i) * time.Minute),
			Path:      hostileStrings[i%len(hostileStrings)].value,
			Tags:      []string{"a", hostileStrings[(i+1)%len(hostileStrings)].value}[:i%3],
			Seq:       uint64(i),
		}
		if i%2 == 0 {
			u := fmt.Sprintf("u-%d", i%5)
			v.UserID = &u
		}
		want = append(want, v)
	}
	rows := make([][]any, len(want))
	for i, v := range want {
		rows[i] = []any{v.VisitorID, v.VisitedAt, v.Path, v.Tags, v.UserID, v.Seq}
	}
	roundTrip(t, ctx, w, "visits", visitColumns, rows, "SELECT visitor_id, visited_at, path, tags, user_id, seq FROM visits ORDER BY seq", want,
		func(t *testing.T, g *visit, e visit) {
			if !g.VisitedAt.Equal(e.VisitedAt) {
				t.Fatalf("visit %d: time %s, want %s", e.Seq, g.VisitedAt, e.VisitedAt)
			}
			g.VisitedAt = e.VisitedAt
			if len(g.Tags) == 0 && len(e.Tags) == 0 {
				g.Tags = e.Tags
			}
		})

	type perVisitor struct {
		VisitorID string `ch:"visitor_id"`
		N         uint64 `ch:"n"`
	}
	var counts []perVisitor
	if err := w.Select(ctx, &counts, "SELECT visitor_id, count() AS n FROM visits GROUP BY visitor_id ORDER BY visitor_id"); err != nil {
		t.Fatal(err)
	}
	if len(counts) != 5 || counts[2].VisitorID != "v-2" || counts[2].N != 100 {
		t.Fatalf("per visitor counts %+v", counts)
	}

	// Erase one subject. 18.16 runs the delete as an asynchronous mutation,
	// so wait for it to finish rather than for a fixed time.
	if err := w.Exec(ctx, "ALTER TABLE visits DELETE WHERE visitor_id = 'v-2'"); err != nil {
		t.Fatal(err)
	}
	for {
		var pending []struct {
			N uint64 `ch:"n"`
		}
		if err := w.Select(ctx, &pending, "SELECT count() AS n FROM system.mutations WHERE database = 'contract' AND table = 'visits' AND is_done = 0"); err != nil {
			t.Fatal(err)
		}
		if pending[0].N == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("delete mutation did not finish")
		case <-time.After(100 * time.Millisecond):
		}
	}
	counts = nil
	if err := w.Select(ctx, &counts, "SELECT visitor_id, count() AS n FROM visits GROUP BY visitor_id ORDER BY visitor_id"); err != nil {
		t.Fatal(err)
	}
	if len(counts) != 4 {
		t.Fatalf("after deleting v-2: %+v", counts)
	}
	for _, c := range counts {
		if c.VisitorID == "v-2" || c.N != 100 {
			t.Fatalf("after deleting v-2: %+v", counts)
		}
	}
}

func TestServerErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := openServer(t, "errors")
	var rows []struct {
		N uint64 `ch:"n"`
	}
	checkBadQueries(t, ctx, w, []badQuery{
		{"syntax error", func() error { return w.Exec(ctx, "SELEC 1 FROM") }, "Syntax error"},
		{"unknown table", func() error { return w.Select(ctx, &rows, "SELECT count() AS n FROM no_such_table") }, "doesn't exist"},
		// 18.16 predates query parameters; the backend says so rather than
		// sending a placeholder the server cannot parse.
		{"parameters on an old server", func() error {
			return w.Select(ctx, &rows, "SELECT {n:UInt64} AS n", warehouse.Named("n", uint64(1)))
		}, "too old for query parameters"},
		{"hostile table name", func() error {
			return w.Insert(ctx, "visits; DROP DATABASE errors", []string{"x"}, [][]any{{"x"}})
		}, "invalid table name"},
		{"positional argument", func() error { return w.Exec(ctx, "SELECT ?", 1) }, "warehouse.Named"},
	})
}

func TestServerCreatesDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := openServer(t, "fresh_db")
	var dbs []struct {
		Name string `ch:"name"`
	}
	if err := w.Select(ctx, &dbs, "SELECT name FROM system.databases WHERE name = 'fresh_db'"); err != nil {
		t.Fatal(err)
	}
	if len(dbs) != 1 {
		t.Fatalf("database fresh_db not created: %+v", dbs)
	}
	// Unqualified names resolve in the configured database.
	if err := w.Exec(ctx, "CREATE TABLE t (x UInt8) ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	var tables []struct {
		Database string `ch:"database"`
	}
	if err := w.Select(ctx, &tables, "SELECT database FROM system.tables WHERE name = 't'"); err != nil {
		t.Fatal(err)
	}
	if len(tables) != 1 || tables[0].Database != "fresh_db" {
		t.Fatalf("table t created in %+v", tables)
	}
}

func TestServerCloseThenUse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := warehouse.Open(ctx, warehouse.Config{URL: chtest.ServerURL(t, "default")})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Ping(ctx); !errors.Is(err, warehouse.ErrClosed) {
		t.Fatalf("Ping after Close: %v, want ErrClosed", err)
	}
	if err := w.Insert(ctx, "t", []string{"x"}, [][]any{{1}}); !errors.Is(err, warehouse.ErrClosed) {
		t.Fatalf("Insert after Close: %v, want ErrClosed", err)
	}
}

func TestServerBadURL(t *testing.T) {
	_, err := warehouse.Open(context.Background(), warehouse.Config{URL: "clickhouse://user:s3cret@/db"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open with a bad URL = %v, want an error that does not echo the password", err)
	}
}

// TestServerVersionChecked: the Debian server these machines install
// (18.16) is refused with its version and the minimum in the message; the
// embedded engine passes.
func TestServerVersionChecked(t *testing.T) {
	w := openServer(t, "version_check")
	err := warehouse.CheckServerVersion(w)
	if err == nil {
		t.Fatal("an 18.16 server passed the version check")
	}
	want := fmt.Sprintf("%d.%d or later", warehouse.MinServerVersion[0], warehouse.MinServerVersion[1])
	for _, s := range []string{"18.16", want} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q does not say %q", err, s)
		}
	}
	if err := warehouse.CheckServerVersion(chtest.Embedded(t)); err != nil {
		t.Fatalf("the embedded engine: %v", err)
	}
}
