package warehouse_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	chmigrations "github.com/stewardhq/steward/migrations/clickhouse"
)

// testBase is the newest event time of the test data. It follows the clock
// so the schema's retention TTLs never expire test rows whenever the tests
// run; it keeps milliseconds, which DateTime64(3) stores exactly.
var testBase = time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)

type countRow struct {
	N uint64 `ch:"n"`
}

func count(t *testing.T, w warehouse.Warehouse, query string, args ...any) uint64 {
	t.Helper()
	var rows []countRow
	if err := w.Select(context.Background(), &rows, query, args...); err != nil {
		t.Fatalf("count %q: %v", query, err)
	}
	if len(rows) != 1 {
		t.Fatalf("count %q: %d rows", query, len(rows))
	}
	return rows[0].N
}

func TestEmbeddedEventsRoundTrip(t *testing.T) {
	ctx := context.Background()
	w := chtest.Embedded(t)
	if w.Backend() != warehouse.BackendEmbedded {
		t.Fatalf("Backend() = %q", w.Backend())
	}
	// The events span six weeks of fixed dates; the schema's retention
	// TTLs (table and ip_truncated) would empty them in a background merge
	// at any moment. This test is about values surviving the trip, so it
	// turns the TTLs off in its own database; retention has its own tests.
	for _, q := range []string{"ALTER TABLE events REMOVE TTL", "ALTER TABLE events MODIFY COLUMN ip_truncated REMOVE TTL"} {
		if err := w.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	want := makeEvents("rt-", 3000, testBase)
	rows := chtest.EventRows(want)
	sort.Slice(want, func(i, j int) bool { return want[i].EventID < want[j].EventID })
	got := roundTrip(t, ctx, w, "events", chtest.EventColumns, rows, "SELECT * FROM events ORDER BY event_id", want,
		func(t *testing.T, g *chtest.Event, e chtest.Event) {
			if !g.EventTime.Equal(e.EventTime) || !g.ReceivedAt.Equal(e.ReceivedAt) {
				t.Fatalf("event %s: times %s / %s, want %s / %s", e.EventID, g.EventTime, g.ReceivedAt, e.EventTime, e.ReceivedAt)
			}
			if !g.ConversionValue.Equal(e.ConversionValue) {
				t.Fatalf("event %s: conversion_value %s, want %s", e.EventID, g.ConversionValue, e.ConversionValue)
			}
			g.EventTime, g.ReceivedAt, g.ConversionValue = e.EventTime, e.ReceivedAt, e.ConversionValue
		})
	anonymous := 0
	for _, e := range got {
		if e.UserID == nil {
			anonymous++
		}
	}
	if anonymous == 0 || anonymous == len(got) {
		t.Fatalf("%d of %d events anonymous: the Nullable user_id did not round-trip both ways", anonymous, len(got))
	}
}

func TestEmbeddedGroupBy(t *testing.T) {
	ctx := context.Background()
	w := chtest.Embedded(t)
	events := makeEvents("gb-", 5000, testBase)
	insertEvents(t, w, events)
	type channelRow struct {
		Channel     string  `ch:"channel"`
		Events      uint64  `ch:"events"`
		Conversions uint64  `ch:"conversions"`
		Revenue     float64 `ch:"revenue"`
	}
	from, to := testBase.Add(-30*24*time.Hour), testBase
	wantRows := map[string]channelRow{}
	for _, e := range events {
		if e.EventTime.Before(from) || !e.EventTime.Before(to) {
			continue
		}
		r := wantRows[e.Channel]
		r.Channel = e.Channel
		r.Events++
		if e.EventType == "conversion" {
			r.Conversions++
			r.Revenue += e.ConversionValue.InexactFloat64()
		}
		wantRows[e.Channel] = r
	}
	var got []channelRow
	err := w.Select(ctx, &got, `
		SELECT channel,
		       count() AS events,
		       countIf(event_type = 'conversion') AS conversions,
		       toFloat64(sumIf(conversion_value, event_type = 'conversion')) AS revenue
		FROM events
		WHERE event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')}
		GROUP BY channel
		ORDER BY channel`,
		warehouse.Named("from", from), warehouse.Named("to", to))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(wantRows) {
		t.Fatalf("got %d channels, want %d: %+v", len(got), len(wantRows), got)
	}
	for _, g := range got {
		want := wantRows[g.Channel]
		if g.Events != want.Events || g.Conversions != want.Conversions || fmt.Sprintf("%.2f", g.Revenue) != fmt.Sprintf("%.2f", want.Revenue) {
			t.Errorf("channel %q: got %+v, want %+v", g.Channel, g, want)
		}
	}
}

func TestEmbeddedDeleteSubject(t *testing.T) {
	ctx := context.Background()
	w := chtest.Embedded(t)
	events := makeEvents("del-", 3000, testBase)
	insertEvents(t, w, events)
	perUser := map[string]uint64{}
	perVisitor := map[string]uint64{}
	for _, e := range events {
		if e.UserID != nil {
			perUser[*e.UserID]++
		}
		perVisitor[e.VisitorID]++
	}
	const user, visitor = "del-user-3", "del-visitor-4"
	if perUser[user] == 0 || perVisitor[visitor] == 0 {
		t.Fatalf("fixture lacks %s or %s", user, visitor)
	}

	tests := []struct {
		name    string
		delete  string
		arg     any
		removed uint64
	}{
		{"by account", "DELETE FROM events WHERE user_id = {subject:String}", warehouse.Named("subject", user), perUser[user]},
		{"by visitor", "DELETE FROM events WHERE visitor_id = {subject:String}", warehouse.Named("subject", visitor), perVisitor[visitor]},
	}
	remaining := uint64(len(events))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := w.Exec(ctx, tt.delete, tt.arg); err != nil {
				t.Fatal(err)
			}
			remaining -= tt.removed
			if n := count(t, w, "SELECT count() AS n FROM events"); n != remaining {
				t.Fatalf("%d events left, want %d", n, remaining)
			}
		})
	}
	if n := count(t, w, "SELECT count() AS n FROM events WHERE user_id = {u:String} OR visitor_id = {v:String}",
		warehouse.Named("u", user), warehouse.Named("v", visitor)); n != 0 {
		t.Fatalf("%d events of the erased subjects remain", n)
	}
	// Everyone else is untouched.
	for _, other := range []string{"del-visitor-0", "del-visitor-5", "del-visitor-299"} {
		if n := count(t, w, "SELECT count() AS n FROM events WHERE visitor_id = {v:String}", warehouse.Named("v", other)); n != perVisitor[other] {
			t.Errorf("visitor %s has %d events, want %d", other, n, perVisitor[other])
		}
	}
}

// latestMigration is the highest version among the ClickHouse migration
// files.
func latestMigration(t *testing.T) uint {
	t.Helper()
	entries, err := fs.ReadDir(chmigrations.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	var latest uint
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if !ok || !strings.HasSuffix(e.Name(), ".up.sql") {
			continue
		}
		n, err := strconv.ParseUint(num, 10, 32)
		if err != nil {
			t.Fatalf("migration %s: %v", e.Name(), err)
		}
		latest = max(latest, uint(n))
	}
	return latest
}

func TestEmbeddedMigrations(t *testing.T) {
	ctx := context.Background()
	w := chtest.Embedded(t)
	want := latestMigration(t)

	version, dirty, err := warehouse.MigrationVersion(ctx, w)
	if err != nil || version != want || dirty {
		t.Fatalf("MigrationVersion = %d, %v, %v; want %d, false, nil", version, dirty, err, want)
	}
	insertEvents(t, w, makeEvents("mig-", 10, testBase))
	// Up again is a no-op, not an error.
	if err := warehouse.Migrate(ctx, w, "up"); err != nil {
		t.Fatalf("second up: %v", err)
	}

	if err := warehouse.Migrate(ctx, w, "down"); err != nil {
		t.Fatalf("down: %v", err)
	}
	if _, _, err := warehouse.MigrationVersion(ctx, w); !errors.Is(err, warehouse.ErrNoVersion) {
		t.Fatalf("MigrationVersion after down: %v, want ErrNoVersion", err)
	}
	if n := count(t, w, "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = 'events'"); n != 0 {
		t.Fatal("events table still exists after down")
	}

	if err := warehouse.Migrate(ctx, w, "up"); err != nil {
		t.Fatalf("up after down: %v", err)
	}
	version, dirty, err = warehouse.MigrationVersion(ctx, w)
	if err != nil || version != want || dirty {
		t.Fatalf("MigrationVersion after up = %d, %v, %v; want %d, false, nil", version, dirty, err, want)
	}
	if n := count(t, w, "SELECT count() AS n FROM events"); n != 0 {
		t.Fatalf("recreated events table holds %d rows", n)
	}

	if err := warehouse.Migrate(ctx, w, "sideways"); err == nil {
		t.Fatal("Migrate accepted an unknown target")
	}
}

// TestEmbeddedSchemaCategories checks the data map's promise on the migrated
// schema itself: every column of every table carries a data category, and
// the events table names its subject columns. Views store nothing and are
// left out, as the data map leaves them out.
func TestEmbeddedSchemaCategories(t *testing.T) {
	ctx := context.Background()
	w := chtest.Embedded(t)
	var cols []struct {
		Table   string `ch:"table"`
		Name    string `ch:"name"`
		Comment string `ch:"comment"`
	}
	if err := w.Select(ctx, &cols, `SELECT table, name, comment FROM system.columns WHERE database = currentDatabase()
		   AND table NOT IN (SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%View')
		 ORDER BY table, position`); err != nil {
		t.Fatal(err)
	}
	tables := map[string]bool{}
	var subjects []string
	for _, c := range cols {
		tables[c.Table] = true
		parts := strings.Split(c.Comment, ",")
		category := parts[0]
		if !strings.HasPrefix(category, "user.") && !strings.HasPrefix(category, "system.") {
			t.Errorf("%s.%s: comment %q is not a data category", c.Table, c.Name, c.Comment)
		}
		for _, flag := range parts[1:] {
			switch flag {
			case "subject=user", "subject=visitor":
				subjects = append(subjects, c.Table+"."+c.Name+" "+strings.TrimPrefix(flag, "subject="))
			case "collected":
			default:
				t.Errorf("%s.%s: unknown flag %q", c.Table, c.Name, flag)
			}
		}
	}
	if !tables["events"] || !tables["schema_migrations"] {
		t.Fatalf("tables %v, want events and schema_migrations", tables)
	}
	sort.Strings(subjects)
	if want := []string{"conversions.user_id user", "conversions.visitor_id visitor", "events.user_id user", "events.visitor_id visitor",
		"touches.user_id user", "touches.visitor_id visitor", "visitor_links.user_id user", "visitor_links.visitor_id visitor"}; !reflect.DeepEqual(subjects, want) {
		t.Errorf("subject columns %v, want %v", subjects, want)
	}
}

func TestEmbeddedConcurrentUse(t *testing.T) {
	ctx := context.Background()
	w := chtest.Embedded(t)
	const workers, batches, perBatch = 8, 5, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prefix := fmt.Sprintf("g%d-", g)
			var inserted uint64
			for b := range batches {
				events := makeEvents(fmt.Sprintf("%sb%d-", prefix, b), perBatch, testBase)
				if err := w.Insert(ctx, "events", chtest.EventColumns, chtest.EventRows(events)); err != nil {
					errs <- fmt.Errorf("worker %d insert: %w", g, err)
					return
				}
				inserted += perBatch
				var rows []countRow
				if err := w.Select(ctx, &rows, "SELECT count() AS n FROM events WHERE startsWith(event_id, {p:String})", warehouse.Named("p", prefix)); err != nil {
					errs <- fmt.Errorf("worker %d select: %w", g, err)
					return
				}
				if rows[0].N != inserted {
					errs <- fmt.Errorf("worker %d sees %d of its events after inserting %d", g, rows[0].N, inserted)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := count(t, w, "SELECT count() AS n FROM events"); n != workers*batches*perBatch {
		t.Fatalf("%d events in total, want %d", n, workers*batches*perBatch)
	}
}

func TestEmbeddedBadQueries(t *testing.T) {
	ctx := context.Background()
	w := chtest.Embedded(t)
	var rows []countRow
	checkBadQueries(t, ctx, w, []badQuery{
		{"syntax error", func() error { return w.Exec(ctx, "SELEC 1 FROM") }, "Syntax error"},
		{"unknown table", func() error { return w.Select(ctx, &rows, "SELECT count() AS n FROM no_such_table") }, "UNKNOWN_TABLE"},
		{"type error", func() error { return w.Exec(ctx, "SELECT 1 + 'a'") }, "Code:"},
		{"missing parameter", func() error { return w.Select(ctx, &rows, "SELECT {n:UInt64} AS n") }, "Code:"},
		{"bad parameter value", func() error {
			return w.Select(ctx, &rows, "SELECT {n:UInt64} AS n", warehouse.Named("n", "twelve"))
		}, "Code:"},
		{"column without field", func() error {
			return w.Select(ctx, &rows, "SELECT 1 AS n, 2 AS other")
		}, "other"},
		{"wrong type into insert", func() error {
			return w.Insert(ctx, "events", []string{"event_id", "event_time"}, [][]any{{"x", "not a time"}})
		}, "Code:"},
		{"insert of unknown column", func() error {
			return w.Insert(ctx, "events", []string{"no_such_column"}, [][]any{{"x"}})
		}, "Code:"},
		{"positional argument", func() error { return w.Exec(ctx, "SELECT ?", 1) }, "warehouse.Named"},
		{"destination not a slice", func() error { return w.Select(ctx, &countRow{}, "SELECT 1 AS n") }, "slice of structs"},
	})
	var engineErr *warehouse.EngineError
	if err := w.Exec(ctx, "SELEC"); !errors.As(err, &engineErr) || !strings.Contains(engineErr.Message, "DB::Exception") {
		t.Fatalf("engine error %#v does not carry ClickHouse's message", err)
	}
}

// hostileStrings are values that break naive quoting or TSV escaping.
var hostileStrings = []struct {
	name  string
	value string
}{
	{"empty", ""},
	{"tab and newline", "a\tb\nc\r\nd"},
	{"quotes", `it's "quoted" ` + "`back`"},
	{"backslashes", `C:\path\n\t\\ \N \0 \'`},
	{"null marker", `\N`},
	{"sql injection", `x'); DROP TABLE events; --`},
	{"unicode", "Grüße 🎬 日本語 \u200b\u202e"},
	{"nul byte", "a\x00b"},
	{"brackets and commas", "['a','b'],[1]"},
}

func TestEmbeddedHostileStringsRoundTrip(t *testing.T) {
	ctx := context.Background()
	w := chtest.Embedded(t)
	if err := w.Exec(ctx, `CREATE TABLE hostile (id UInt32, s String, a Array(String), n Nullable(String))
		ENGINE = MergeTree ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	type hostileRow struct {
		ID uint32   `ch:"id"`
		S  string   `ch:"s"`
		A  []string `ch:"a"`
		N  *string  `ch:"n"`
	}
	var rows [][]any
	for i, h := range hostileStrings {
		rows = append(rows, []any{uint32(i), h.value, []string{h.value, "plain", h.value}, &h.value})
	}
	if err := w.Insert(ctx, "hostile", []string{"id", "s", "a", "n"}, rows); err != nil {
		t.Fatal(err)
	}
	var got []hostileRow
	if err := w.Select(ctx, &got, "SELECT id, s, a, n FROM hostile ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(hostileStrings) {
		t.Fatalf("got %d rows, want %d", len(got), len(hostileStrings))
	}
	for i, h := range hostileStrings {
		t.Run(h.name, func(t *testing.T) {
			g := got[i]
			if g.S != h.value || g.N == nil || *g.N != h.value || !reflect.DeepEqual(g.A, []string{h.value, "plain", h.value}) {
				t.Fatalf("stored %q, read back %q / %q / %v", h.value, g.S, g.A, g.N)
			}
			// The same value as a parameter finds exactly its row, and comes
			// back unchanged from a Nullable and an array parameter.
			var params []struct {
				ID uint32   `ch:"id"`
				S  *string  `ch:"ps"`
				A  []string `ch:"pa"`
			}
			err := w.Select(ctx, &params, "SELECT id, {n:Nullable(String)} AS ps, {a:Array(String)} AS pa FROM hostile WHERE s = {s:String}",
				warehouse.Named("s", h.value), warehouse.Named("n", h.value), warehouse.Named("a", []string{h.value, h.value}))
			if err != nil {
				t.Fatal(err)
			}
			if len(params) != 1 || params[0].ID != uint32(i) || params[0].S == nil || *params[0].S != h.value ||
				!reflect.DeepEqual(params[0].A, []string{h.value, h.value}) {
				t.Fatalf("parameter %q matched %+v", h.value, params)
			}
		})
	}
}

func TestEmbeddedParameterInjection(t *testing.T) {
	ctx := context.Background()
	w := chtest.Embedded(t)
	events := makeEvents("inj-", 50, testBase)
	events[0].VisitorID = `o'brien\' OR 1=1 --`
	insertEvents(t, w, events)
	tests := []struct {
		name    string
		visitor string
		want    uint64
	}{
		{"quote breakout", "x' OR '1'='1", 0},
		{"comment breakout", "x' OR 1=1 --", 0},
		{"escaped quote breakout", `x\' OR 1=1 --`, 0},
		{"stacked statement", "x'; DROP TABLE events; --", 0},
		{"placeholder lookalike", "{v:String}", 0},
		{"value with quotes matches itself only", `o'brien\' OR 1=1 --`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := count(t, w, "SELECT count() AS n FROM events WHERE visitor_id = {v:String}", warehouse.Named("v", tt.visitor))
			if n != tt.want {
				t.Fatalf("matched %d events, want %d", n, tt.want)
			}
			if err := w.Exec(ctx, "DELETE FROM events WHERE visitor_id = {v:String}", warehouse.Named("v", tt.visitor)); err != nil {
				t.Fatal(err)
			}
		})
	}
	if n := count(t, w, "SELECT count() AS n FROM events"); n != uint64(len(events)-1) {
		t.Fatalf("%d events left, want %d: a parameter changed what a statement did", n, len(events)-1)
	}

	names := []struct {
		name    string
		table   string
		columns []string
	}{
		{"table with statement", "events (event_id) VALUES ('x'); DROP TABLE events; --", []string{"event_id"}},
		{"table with space", "events x", []string{"event_id"}},
		{"column with expression", "events", []string{"event_id) SELECT * FROM system.users --"}},
		{"quoted column", "events", []string{"`event_id`"}},
	}
	for _, tt := range names {
		t.Run(tt.name, func(t *testing.T) {
			if err := w.Insert(ctx, tt.table, tt.columns, [][]any{{"x"}}); err == nil {
				t.Fatal("Insert accepted a hostile name")
			}
		})
	}
	if n := count(t, w, "SELECT count() AS n FROM events"); n != uint64(len(events)-1) {
		t.Fatalf("%d events after hostile names, want %d", n, len(events)-1)
	}
}

func TestEmbeddedParameterTypes(t *testing.T) {
	ctx := context.Background()
	w := chtest.Embedded(t)
	at := time.Date(2025, 12, 31, 23, 59, 58, 123_000_000, time.FixedZone("UTC+2", 2*3600))
	var nilString *string
	// Each case binds a value to {p:Type} and reads back ClickHouse's text
	// form of what was bound (times as Unix time, which names the instant).
	tests := []struct {
		name  string
		expr  string
		value any
		want  string
	}{
		{"string", "toString({p:String})", "abc", "abc"},
		{"int64", "toString({p:Int64})", int64(-9007199254740993), "-9007199254740993"},
		{"uint64", "toString({p:UInt64})", uint64(18446744073709551615), "18446744073709551615"},
		{"float64", "toString({p:Float64})", 0.1, "0.1"},
		{"bool", "toString({p:Bool})", true, "true"},
		{"time keeps instant and ms", "toString(toUnixTimestamp64Milli({p:DateTime64(3, 'UTC')}))", at, fmt.Sprint(at.UnixMilli())},
		{"time without fraction", "toString(toUnixTimestamp({p:DateTime('UTC')}))", at.Truncate(time.Second), fmt.Sprint(at.Unix())},
		{"nil is NULL", "ifNull({p:Nullable(String)}, 'NULL')", nil, "NULL"},
		{"nil pointer is NULL", "ifNull({p:Nullable(String)}, 'NULL')", nilString, "NULL"},
		{"string slice", "toString({p:Array(String)})", []string{"a", "b'c"}, `['a','b\'c']`},
		{"int slice", "toString({p:Array(Int32)})", []int32{1, -2}, "[1,-2]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rows []struct {
				V string `ch:"v"`
			}
			if err := w.Select(ctx, &rows, "SELECT "+tt.expr+" AS v", warehouse.Named("p", tt.value)); err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || rows[0].V != tt.want {
				t.Fatalf("bound %v, engine sees %+v, want %q", tt.value, rows, tt.want)
			}
		})
	}
}

func TestEmbeddedCloseThenUse(t *testing.T) {
	ctx := context.Background()
	w := chtest.Embedded(t)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.Ping(ctx); !errors.Is(err, warehouse.ErrClosed) {
		t.Fatalf("Ping after Close: %v, want ErrClosed", err)
	}
	// Other warehouses on the engine keep working.
	other := chtest.Embedded(t)
	if err := other.Ping(ctx); err != nil {
		t.Fatalf("other warehouse after Close: %v", err)
	}
}

func TestEmbeddedMissingLibrary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "lib", "libchdb.so")
	_, err := warehouse.Open(context.Background(), warehouse.Config{DataDir: t.TempDir(), LibPath: missing})
	if !errors.Is(err, warehouse.ErrEngineMissing) {
		t.Fatalf("Open = %v, want ErrEngineMissing", err)
	}
	for _, want := range []string{missing, "make chdb"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestEmbeddedSecondDataDirInProcess(t *testing.T) {
	chtest.Embedded(t)
	cfg := chtest.EmbeddedConfig(t)
	cfg.DataDir = t.TempDir()
	_, err := warehouse.Open(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "one data directory per process") {
		t.Fatalf("Open on a second data dir = %v, want the one-directory error", err)
	}
}

// secondProcessEnv, when set, makes TestEmbeddedSecondProcess play the second
// process: it opens the data dir named by the variable and reports the error.
const secondProcessEnv = "STEWARD_WAREHOUSE_TEST_SECOND_PROCESS"

func TestEmbeddedSecondProcess(t *testing.T) {
	if dir := os.Getenv(secondProcessEnv); dir != "" {
		cfg := warehouse.Config{DataDir: dir, LibPath: os.Getenv("STEWARD_CHDB_LIB"), Database: "second"}
		w, err := warehouse.Open(context.Background(), cfg)
		if err == nil {
			w.Close()
			t.Fatal("second process opened a data dir the first one runs on")
		}
		fmt.Printf("SECOND-PROCESS-ERROR: %v\n", err)
		if !errors.Is(err, warehouse.ErrEngineInUse) {
			t.Fatalf("error is not ErrEngineInUse: %v", err)
		}
		return
	}

	chtest.Embedded(t) // the engine of this process now runs on the shared dir
	cfg := chtest.EmbeddedConfig(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestEmbeddedSecondProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), secondProcessEnv+"="+cfg.DataDir, "STEWARD_CHDB_LIB="+cfg.LibPath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("second process failed: %v\n%s", err, out)
	}
	msg := string(out)
	for _, want := range []string{"SECOND-PROCESS-ERROR", "in use by another process", filepath.Join(cfg.DataDir, "clickhouse"), fmt.Sprintf("process %d", os.Getpid())} {
		if !strings.Contains(msg, want) {
			t.Errorf("second process output lacks %q:\n%s", want, msg)
		}
	}
}

// TestEmbeddedGoPanicRecovered proves the engine left the Go runtime's signal
// handling alone: with ClickHouse's handlers installed, a nil dereference
// kills the process with SIGSEGV instead of panicking.
func TestEmbeddedGoPanicRecovered(t *testing.T) {
	w := chtest.Embedded(t)
	if err := w.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	recovered := make(chan any)
	go func() {
		defer func() { recovered <- recover() }()
		var e *chtest.Event
		_ = e.EventID // nil dereference: SIGSEGV turned into a panic by Go
	}()
	r := <-recovered
	if err, ok := r.(error); !ok || !strings.Contains(err.Error(), "nil pointer dereference") {
		t.Fatalf("recovered %v, want a nil pointer dereference panic", r)
	}
	if err := w.Ping(context.Background()); err != nil {
		t.Fatalf("engine after the panic: %v", err)
	}
}

// TestEmbeddedInsertValueTypes checks every Go type Insert accepts against
// the ClickHouse type it is meant for, read back through Select.
func TestEmbeddedInsertValueTypes(t *testing.T) {
	ctx := context.Background()
	w := chtest.Embedded(t)
	if err := w.Exec(ctx, `CREATE TABLE typed (
			id UInt8, flag Bool, flag8 UInt8, i8 Int8, i64 Int64, u64 UInt64, f32 Float32, f64 Float64,
			at DateTime('Europe/Berlin'), at64 DateTime64(3, 'America/New_York'), maybe Nullable(DateTime64(3, 'UTC')),
			day Date, ids Array(Int32), uid UUID, amount Decimal(18, 4), label LowCardinality(String))
		ENGINE = MergeTree ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	type typedRow struct {
		ID     uint8           `ch:"id"`
		Flag   bool            `ch:"flag"`
		Flag8  uint8           `ch:"flag8"`
		I8     int8            `ch:"i8"`
		I64    int64           `ch:"i64"`
		U64    uint64          `ch:"u64"`
		F32    float32         `ch:"f32"`
		F64    float64         `ch:"f64"`
		At     time.Time       `ch:"at"`
		At64   time.Time       `ch:"at64"`
		Maybe  *time.Time      `ch:"maybe"`
		Day    time.Time       `ch:"day"`
		IDs    []int32         `ch:"ids"`
		UID    uuid.UUID       `ch:"uid"`
		Amount decimal.Decimal `ch:"amount"`
		Label  string          `ch:"label"`
	}
	at := time.Date(2026, 7, 1, 23, 30, 15, 0, time.UTC)
	at64 := time.Date(2026, 1, 31, 4, 5, 6, 789_000_000, time.FixedZone("X", -3*3600))
	want := []typedRow{
		{1, true, 1, -128, -9223372036854775808, 18446744073709551615, 1.5, 1e-300, at, at64, &at64,
			time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC), []int32{1, -2, 3}, uuid.MustParse("0b5e8a3c-3f4e-4c2a-9c1d-7a3e2f1b0c9d"), decimal.RequireFromString("-12345.6789"), "x"},
		{2, false, 0, 127, 9223372036854775807, 0, -0.25, 0, at.Add(time.Hour), at64.Add(time.Millisecond), nil,
			time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), []int32{}, uuid.Nil, decimal.Zero, ""},
	}
	rows := make([][]any, len(want))
	for i, r := range want {
		rows[i] = []any{r.ID, r.Flag, r.Flag8 == 1, r.I8, r.I64, r.U64, r.F32, r.F64, r.At, r.At64, r.Maybe,
			r.Day.Format(time.DateOnly), r.IDs, r.UID, r.Amount, r.Label}
	}
	cols := []string{"id", "flag", "flag8", "i8", "i64", "u64", "f32", "f64", "at", "at64", "maybe", "day", "ids", "uid", "amount", "label"}
	roundTrip(t, ctx, w, "typed", cols, rows, "SELECT * FROM typed ORDER BY id", want, func(t *testing.T, g *typedRow, e typedRow) {
		if !g.At.Equal(e.At) || !g.At64.Equal(e.At64) || !g.Day.Equal(e.Day) || !g.Amount.Equal(e.Amount) {
			t.Fatalf("row id %d: times/amount %s %s %s %s, want %s %s %s %s", e.ID, g.At, g.At64, g.Day, g.Amount, e.At, e.At64, e.Day, e.Amount)
		}
		if (g.Maybe == nil) != (e.Maybe == nil) || (g.Maybe != nil && !g.Maybe.Equal(*e.Maybe)) {
			t.Fatalf("row id %d: maybe %v, want %v", e.ID, g.Maybe, e.Maybe)
		}
		g.At, g.At64, g.Day, g.Amount, g.Maybe = e.At, e.At64, e.Day, e.Amount, e.Maybe
	})
}

// TestMigrationVersionOnlyReads asks an unmigrated database its version:
// ErrNoVersion, and still no table in it afterwards.
func TestMigrationVersionOnlyReads(t *testing.T) {
	ctx := context.Background()
	cfg := chtest.EmbeddedConfig(t)
	cfg.Database = "version_read_only"
	w, err := warehouse.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = w.Exec(context.Background(), "DROP DATABASE IF EXISTS version_read_only")
		_ = w.Close()
	})
	if _, _, err := warehouse.MigrationVersion(ctx, w); !errors.Is(err, warehouse.ErrNoVersion) {
		t.Fatalf("MigrationVersion of an unmigrated database: %v, want ErrNoVersion", err)
	}
	if n := count(t, w, "SELECT count() AS n FROM system.tables WHERE database = currentDatabase()"); n != 0 {
		t.Fatalf("asking the version created %d tables", n)
	}
}
