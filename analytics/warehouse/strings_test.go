package warehouse_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/testutil/chtest"
)

func TestEmbeddedSelectStrings(t *testing.T) { testSelectStrings(t, chtest.Embedded(t)) }

// TestServerSelectStrings runs on the server the tests have, which may
// be older than query parameters and formatRowNoNewline (see
// server_test.go): the cases that need them check the server refuses
// them when it lacks them.
func TestServerSelectStrings(t *testing.T) { testSelectStrings(t, openServer(t, "select_strings")) }

// testSelectStrings checks SelectStrings against what the same query
// gives through Select: every row once, every value's bytes as stored,
// whatever they hold, over results of many blocks; and SelectFormats
// against what formatRowNoNewline writes of each row.
func testSelectStrings(t *testing.T, w warehouse.Warehouse) {
	ctx := context.Background()
	if err := w.Exec(ctx, "CREATE TABLE texts (id UInt64, a String, b String) ENGINE = MergeTree ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	const n = 150_000
	rows := make([][]any, n)
	for i := range rows {
		h := hostileStrings[i%len(hostileStrings)].value
		// Every thousandth value is longer than one varint byte can say
		// and than many rows together.
		if i%1000 == 0 {
			h = strings.Repeat(h+"é", 5000)
		}
		rows[i] = []any{uint64(i), h, fmt.Sprint(i)}
	}
	if err := w.Insert(ctx, "texts", []string{"id", "a", "b"}, rows); err != nil {
		t.Fatal(err)
	}

	// has reports whether the engine has a function. A server without
	// formatRowNoNewline is older than query parameters too (the 18.16
	// the tests have lacks both).
	has := func(function string) bool {
		var rows []struct {
			N uint64 `ch:"n"`
		}
		if err := w.Select(ctx, &rows, "SELECT count() AS n FROM system.functions WHERE name = '"+function+"'"); err != nil {
			t.Fatal(err)
		}
		return rows[0].N > 0
	}
	modern := has("formatRowNoNewline")

	type pair struct {
		A string `ch:"a"`
		B string `ch:"b"`
	}
	tests := []struct {
		name  string
		query string
		args  []any
	}{
		{"every row", "SELECT a, b FROM texts", nil},
		{"with a parameter", "SELECT a, b FROM texts WHERE id % {m:UInt64} = 0", []any{warehouse.Named("m", 7)}},
		{"computed values", "SELECT x AS a, y AS b FROM (SELECT concat(b, '-') AS x, concat(b, a) AS y FROM texts WHERE id < 10)", nil},
		{"no row", fmt.Sprintf("SELECT a, b FROM texts WHERE id > %d", n), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.args) > 0 && !modern {
				if err := w.SelectStrings(ctx, func([][]byte) error { return nil }, tt.query, tt.args...); err == nil {
					t.Fatal("an old server took query parameters")
				}
				return
			}
			var want []pair
			if err := w.Select(ctx, &want, tt.query, tt.args...); err != nil {
				t.Fatal(err)
			}
			wantSet := map[pair]int{}
			for _, p := range want {
				wantSet[p]++
			}
			got := 0
			err := w.SelectStrings(ctx, func(row [][]byte) error {
				if len(row) != 2 {
					return fmt.Errorf("row of %d values", len(row))
				}
				p := pair{string(row[0]), string(row[1])}
				if wantSet[p] == 0 {
					return fmt.Errorf("row %q %.80q not in Select's result, or once too many", p.B, p.A)
				}
				wantSet[p]--
				got++
				return nil
			}, tt.query, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got != len(want) {
				t.Fatalf("%d rows, want %d", got, len(want))
			}
		})
	}

	t.Run("formatted", func(t *testing.T) {
		formats := warehouse.LineFormats
		if !modern {
			err := w.SelectFormats(ctx, formats, func(int, []byte) error { return nil }, "SELECT a, b FROM texts")
			if err == nil || !strings.Contains(err.Error(), "formatRowNoNewline") {
				t.Fatalf("err %v, want the server's refusal of formatRowNoNewline", err)
			}
			return
		}
		cols := "a, b, id, toDateTime64(id, 3, 'UTC') AS at"
		chunks := checkFormats(t, w, formats, "SELECT "+cols+" FROM texts", "SELECT "+cols+" FROM texts")
		if chunks < 2 {
			t.Fatalf("%d chunks: the rows should span several", chunks)
		}
	})
	t.Run("a format with a header is refused", func(t *testing.T) {
		err := w.SelectFormats(ctx, []string{"JSONEachRow", "CSVWithNames"}, func(int, []byte) error { return nil }, "SELECT a FROM texts")
		if err == nil {
			t.Fatal("no error for CSVWithNames")
		}
	})
	t.Run("the callback's error stops the query", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := w.SelectStrings(ctx, func([][]byte) error {
			calls++
			return stop
		}, "SELECT a, b FROM texts")
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("err %v after %d calls, want stop after 1", err, calls)
		}
		// The connection is usable after a stopped query.
		if got := count(t, w, "SELECT count() AS n FROM texts"); got != n {
			t.Fatalf("count after a stopped query: %d", got)
		}
	})
	t.Run("a column other than String is refused", func(t *testing.T) {
		err := w.SelectStrings(ctx, func([][]byte) error { return nil }, "SELECT a, id FROM texts")
		if err == nil || !strings.Contains(err.Error(), "only String columns") {
			t.Fatalf("err %v, want a refused column", err)
		}
	})
	t.Run("an engine error is returned", func(t *testing.T) {
		err := w.SelectStrings(ctx, func([][]byte) error { return nil }, "SELECT a FROM no_such_table")
		if err == nil {
			t.Fatal("no error for a missing table")
		}
	})
}
