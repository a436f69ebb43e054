package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

var update = flag.Bool("update", false, "rewrite docs/data-map.md from the live data map")

// TestDataMapCoverage fails on any column of any store that the data map
// cannot govern: a column without a category, a tag naming an unknown
// category, a model field the migrated schema lacks. The embedded server
// covers SQLite and the ClickHouse engine; PostgreSQL is migrated apart
// and checked against the same models.
func TestDataMapCoverage(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite and clickhouse engine", func(t *testing.T) {
		m, problems, err := embedded.dataMap.Build(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s", p)
		}
		stores := map[string]bool{}
		for _, e := range m.Entries {
			stores[e.Store] = true
		}
		if !stores[datamap.StoreSQL] || !stores[datamap.StoreWarehouse] {
			t.Fatalf("map covers stores %v, want sql and warehouse", stores)
		}
		// Every item the privacy policy names is kept in a column of its
		// categories, or the checklist says why nothing is stored.
		for _, p := range datamap.CheckChecklist(m, embedded.engine.Checklist()) {
			t.Errorf("%s", p)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		db := sqltest.Postgres(t)
		_, problems, err := datamap.Build(ctx, datamap.Inputs{
			SQL:     db,
			Sources: embedded.dataMap.Sources(),
			Policy:  embedded.engine,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s", p)
		}
	})
}

// TestDataSourcesCoverEveryModule holds the data map's sources to the
// modules the server runs: every module that declares models is a source
// under its name with exactly those models, and every source but the
// platform's is a module. The governance modules are listed by package,
// since they are built from the map; this keeps that list true.
func TestDataSourcesCoverEveryModule(t *testing.T) {
	sources := map[string][]any{}
	for _, src := range embedded.dataMap.Sources() {
		if _, dup := sources[src.Module]; dup {
			t.Errorf("module %s is a source twice", src.Module)
		}
		sources[src.Module] = src.Models
	}
	delete(sources, "platform")
	for _, m := range embedded.modules {
		want := m.Models()
		got, ok := sources[m.Name()]
		delete(sources, m.Name())
		if len(want) == 0 && !ok {
			continue
		}
		if len(got) != len(want) {
			t.Errorf("module %s: the data map reads %d models, the module declares %d", m.Name(), len(got), len(want))
			continue
		}
		for i := range want {
			if reflect.TypeOf(got[i]) != reflect.TypeOf(want[i]) {
				t.Errorf("module %s: model %d is %T in the data map, %T in the module", m.Name(), i, got[i], want[i])
			}
		}
	}
	for name := range sources {
		t.Errorf("the data map reads models of %s, which is no module of the server", name)
	}
}

// TestDataMapDocIsCurrent keeps docs/data-map.md equal to the record of
// processing the live data map renders. After a schema or policy change,
// regenerate it with `make docs`.
func TestDataMapDocIsCurrent(t *testing.T) {
	m := liveDataMap(t)
	proc, err := processingFacts()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := datamap.Render(&b, m, datamap.FormatMarkdown, proc); err != nil {
		t.Fatal(err)
	}
	const path = "../../docs/data-map.md"
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	current, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it with `make docs`)", err)
	}
	if !bytes.Equal(current, b.Bytes()) {
		t.Fatalf("docs/data-map.md is out of date with the data map; regenerate it with `make docs`")
	}
}

// TestDatamapCommand runs `steward datamap` on the production shape,
// PostgreSQL and a ClickHouse server, in every format. The Debian server
// cannot take the warehouse schema, so the command prints the SQL part of
// the map and fails, naming the unmigrated warehouse.
func TestDatamapCommand(t *testing.T) {
	pgURL := pgtest.NewDatabase(t)
	env := map[string]string{
		"STEWARD_DATABASE_URL":   pgURL,
		"STEWARD_CLICKHOUSE_URL": chtest.ServerURL(t, "steward_datamap_cmd"),
		"STEWARD_DATA_DIR":       t.TempDir(),
	}
	getenv := func(k string) string { return env[k] }
	// The SQL store must be migrated; the old Debian ClickHouse server
	// cannot take the warehouse schema.
	migrateSQLOnly(t, getenv)

	tests := []struct {
		format string
		want   []string
	}{
		{"json", []string{`"table": "decision_log"`, `"category": "user.unique_id.pseudonymous"`}},
		{"markdown", []string{"# Record of processing activities", "| sql | decision_log | subject_ref |"}},
		{"fides", []string{"fides_key: steward_sql", "name: subject_ref"}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"datamap", "--format", tt.format}, &stdout, &stderr, getenv)
			if code != 1 || !strings.Contains(stderr.String(), "warehouse schema is at migration 0") {
				t.Fatalf("exit %d, want 1 naming the unmigrated warehouse: %s", code, stderr.String())
			}
			for _, want := range tt.want {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("output lacks %q", want)
				}
			}
		})
	}
	t.Run("bad format", func(t *testing.T) {
		code := run(context.Background(), []string{"datamap", "--format", "xml"}, io.Discard, io.Discard, getenv)
		if code != 2 {
			t.Fatalf("exit %d, want 2", code)
		}
	})
}

func migrateSQLOnly(t *testing.T, getenv func(string) string) {
	t.Helper()
	// migrate up would also migrate the warehouse; do the SQL part alone.
	ctx := context.Background()
	st, err := openStores(ctx, loadTestConfig(t, getenv), "test", discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if err := st.migrateSQL(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestTokenCommand creates tokens with `steward token create` on the
// production shape.
func TestTokenCommand(t *testing.T) {
	env := map[string]string{
		"STEWARD_DATABASE_URL":   pgtest.NewDatabase(t),
		"STEWARD_CLICKHOUSE_URL": chtest.ServerURL(t, "steward_token_cmd"),
		"STEWARD_DATA_DIR":       t.TempDir(),
		"STEWARD_AUTO_MIGRATE":   "false",
	}
	getenv := func(k string) string { return env[k] }
	migrateSQLOnly(t, getenv)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"dpo token", []string{"token", "create", "--role", "dpo", "--email", "dpo@example.com"}, 0},
		{"unknown role", []string{"token", "create", "--role", "root", "--email", "x@example.com"}, 2},
		{"no email", []string{"token", "create", "--role", "user"}, 2},
		{"no subcommand", []string{"token"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr, getenv)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, stderr.String())
			}
			if code == 0 {
				lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
				if len(lines) != 1 || !strings.HasPrefix(lines[0], "stw_") {
					t.Fatalf("stdout %q is not one token line", stdout.String())
				}
			}
		})
	}
}
