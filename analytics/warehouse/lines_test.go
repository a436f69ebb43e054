package warehouse_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/testutil/chtest"
)

// checkFormats runs query through SelectFormats in formats and requires,
// line by line and in order, what the engine's formatRowNoNewline writes
// of each row of want (the same rows, in the same order). It returns the
// number of chunks.
func checkFormats(t *testing.T, w warehouse.Warehouse, formats []string, query, want string, args ...any) int {
	t.Helper()
	ctx := context.Background()
	cols := make([]string, len(formats))
	for i, f := range formats {
		cols[i] = fmt.Sprintf("formatRowNoNewline('%s', *) AS f%d", f, i)
	}
	wants := make([][]string, len(formats))
	err := w.SelectStrings(ctx, func(row [][]byte) error {
		for i, v := range row {
			wants[i] = append(wants[i], string(v)+"\n")
		}
		return nil
	}, "SELECT "+strings.Join(cols, ", ")+" FROM ("+want+")", args...)
	if err != nil {
		t.Fatal(err)
	}
	// Calls for different formats may run at once: each has its own.
	got := make([][]string, len(formats))
	chunks := make([]int, len(formats))
	err = w.SelectFormats(ctx, formats, func(i int, chunk []byte) error {
		chunks[i]++
		if len(chunk) == 0 || chunk[len(chunk)-1] != '\n' {
			return fmt.Errorf("chunk %d of %s ends inside a row", chunks[i], formats[i])
		}
		ls := strings.SplitAfter(string(chunk[:len(chunk)-1]), "\n")
		ls[len(ls)-1] += "\n"
		got[i] = append(got[i], ls...)
		return nil
	}, query, args...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range formats {
		if chunks[i] != chunks[0] {
			t.Fatalf("%d chunks of %s, %d of %s", chunks[i], formats[i], chunks[0], formats[0])
		}
	}
	for i, f := range formats {
		// A CSV value may hold newlines of its own: compare the text.
		g, wt := strings.Join(got[i], ""), strings.Join(wants[i], "")
		if g == wt {
			continue
		}
		for j := range min(len(got[i]), len(wants[i])) {
			if got[i][j] != wants[i][j] {
				t.Fatalf("%s line %d:\n got  %q\n want %q", f, j, got[i][j], wants[i][j])
			}
		}
		t.Fatalf("%s: %d lines, want %d", f, len(got[i]), len(wants[i]))
	}
	return chunks[0]
}

// writtenTypes are the column types SelectFormats writes in Go on the
// embedded engine, each as a table's column.
const writtenTypes = `id UInt64,
	s String, lc LowCardinality(String), n Nullable(String), lcn LowCardinality(Nullable(String)),
	u8 UInt8, u16 UInt16, u32 UInt32, u64 UInt64, i8 Int8, i16 Int16, i32 Int32, i64 Int64,
	t0 DateTime64(0, 'UTC'), t3 DateTime64(3, 'UTC'), t6 DateTime64(6, 'UTC'), t9 DateTime64(9, 'UTC'),
	d4 Decimal(18, 4), d0 Decimal(18, 0), d9 Decimal(9, 2), d18 Decimal(18, 18),
	a Array(String), al Array(LowCardinality(String)), an Array(Nullable(String)), ai Array(Int32),
	at Array(DateTime64(3, 'UTC')), ad Array(Decimal(18, 4)), nt Nullable(DateTime64(3, 'UTC')), nd Nullable(Decimal(18, 4))`

// TestEmbeddedSelectFormats checks the Go writer against the engine over
// every type it writes: random rows of the engine's own generateRandom
// (any bytes in strings, any value in range), and hostile values by hand.
func TestEmbeddedSelectFormats(t *testing.T) {
	ctx := context.Background()
	w := chtest.Embedded(t)
	formats := warehouse.LineFormats
	seed := rand.Uint64() >> 1
	t.Logf("generateRandom seed %d", seed)
	// Times within DateTime64's range (1900 to 2299), and values that fit
	// their types: what a column can hold when written through SQL.
	if err := w.Exec(ctx, "CREATE TABLE typed ("+writtenTypes+") ENGINE = MergeTree ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	random := fmt.Sprintf(`INSERT INTO typed SELECT rowNumberInAllBlocks() AS id, * EXCEPT id FROM generateRandom('%s', %d, 40, 4)
		WHERE t0 BETWEEN '1900-01-01' AND '2299-12-31' AND t3 BETWEEN '1900-01-01' AND '2299-12-31'
		AND t6 BETWEEN '1900-01-01' AND '2262-04-11' AND t9 BETWEEN '1900-01-01' AND '2262-04-11'
		AND arrayAll(x -> x BETWEEN '1900-01-01' AND '2299-12-31', at)
		AND (nt IS NULL OR nt BETWEEN '1900-01-01' AND '2299-12-31') LIMIT 40000`,
		strings.ReplaceAll(strings.Join(strings.Fields(writtenTypes), " "), "'", `\'`), seed)
	if err := w.Exec(ctx, random); err != nil {
		t.Fatal(err)
	}
	hostile := []string{"''", `'a\tb\nc\r\nd'`, "'it\\'s \"quoted\" `back`'", `'C:\\path\\n \\N \\0 \\\''`, `'a\0b'`,
		`'€ \xE2\x80\xA8 line \xE2\x80\xA9 para \xE2\x80\xA7 \xE2\x80\xAA'`, `'\xE2\x80'`, `'\xE2'`, `'\x7F \x1F \x01 /slash/ </script>'`,
		`'\xFF\xFE invalid \xC3'`, `'Grüße 🎬 日本語'`, `'"'`, `','`, `'\\'`}
	for i, h := range hostile {
		q := fmt.Sprintf(`INSERT INTO typed (id, s, lc, n, lcn, a, al, an) VALUES (%d, %s, %s, %s, %s, [%s, %s], [%s], [%s, NULL])`,
			100000+i, h, h, h, h, h, h, h, h)
		if err := w.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", h, err)
		}
	}
	edges := []string{
		`(200000, -9223372036854775808, 18446744073709551615, -2147483648, '1900-01-01 00:00:00', '2299-12-31 23:59:59.999', -99999999999999.9999, 9999999.99, NULL, NULL)`,
		`(200001, 0, 0, 0, '1970-01-01 00:00:00', '1969-12-31 23:59:59.999', -0.0001, -0.5, '1969-12-31 23:59:59.001', 0)`,
		`(200002, 1, -1, 2147483647, '2025-11-26 02:11:22', '2025-11-26 02:11:22.75', 12.5, 0.01, '2025-11-26 02:11:22.7', -12.34)`,
	}
	for _, e := range edges {
		if err := w.Exec(ctx, "INSERT INTO typed (id, i64, u64, i32, t0, t3, d4, d9, nt, nd) VALUES "+e); err != nil {
			t.Fatalf("%s: %v", e, err)
		}
	}
	if n := count(t, w, "SELECT count() AS n FROM typed"); n < 10000 {
		t.Fatalf("%d rows generated", n)
	}

	t.Run("every type", func(t *testing.T) {
		// Each column is written in Go, so this compares the Go writer,
		// not the engine with itself.
		var cols []struct {
			Name string `ch:"name"`
			Type string `ch:"type"`
		}
		if err := w.Select(ctx, &cols, "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'typed'"); err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			if !warehouse.WrittenInGo(c.Type) {
				t.Errorf("column %s of type %s is not written in Go", c.Name, c.Type)
			}
		}
		q := "SELECT * FROM typed ORDER BY id"
		if chunks := checkFormats(t, w, formats, q, q); chunks < 2 {
			t.Fatalf("%d chunks: the rows should span several", chunks)
		}
	})
	t.Run("one format", func(t *testing.T) {
		q := "SELECT s, d4, a FROM typed WHERE id % 7 = 0 ORDER BY id"
		for _, f := range formats {
			checkFormats(t, w, []string{f}, q, q)
		}
	})
	t.Run("formats in another order", func(t *testing.T) {
		q := "SELECT n, t3, an FROM typed ORDER BY id"
		checkFormats(t, w, []string{"CSV", "JSONEachRow"}, q, q)
	})
	t.Run("types the engine writes", func(t *testing.T) {
		// Floats, maps, booleans, UUIDs and other time zones are written by
		// the engine: the rows are the same either way.
		for _, typ := range []string{"Float64", "Map(String, Int32)", "Bool", "UUID", "DateTime64(3, 'Asia/Kolkata')", "DateTime('UTC')"} {
			if warehouse.WrittenInGo(typ) {
				t.Fatalf("%s is written in Go", typ)
			}
		}
		q := `SELECT id, s, toFloat64(i32) / 7 AS f, map(s, i32) AS m, i8 > 0 AS b, reinterpretAsUUID(MD5(s)) AS u,
			toDateTime64(t3, 3, 'Asia/Kolkata') AS tk, toDateTime(t0, 'UTC') AS dt FROM typed ORDER BY id`
		checkFormats(t, w, formats, q, q)
	})
	t.Run("no row", func(t *testing.T) {
		q := "SELECT * FROM typed WHERE id > 1000000"
		if chunks := checkFormats(t, w, formats, q, q); chunks != 0 {
			t.Fatalf("%d chunks for no row", chunks)
		}
	})
}

// TestEmbeddedStreamStops stops streamed results at every point a reader
// can: an error from the callback, or a context cancelled, at the first
// chunk or later, while the engine fetches the next chunk ahead. Each
// stop returns its cause, and the pool's connections all work after.
func TestEmbeddedStreamStops(t *testing.T) {
	ctx := context.Background()
	w := chtest.Embedded(t)
	const q = "SELECT number AS id, toString(number) AS s, repeat('x', 100) AS pad FROM numbers(1000000)"
	stop := errors.New("stop")
	for _, after := range []int{1, 2, 3, 5} {
		for _, how := range []string{"error", "cancel"} {
			t.Run(fmt.Sprintf("%s after %d chunks", how, after), func(t *testing.T) {
				cctx, cancel := context.WithCancel(ctx)
				defer cancel()
				var calls atomic.Int32
				fn := func(int, []byte) error {
					if int(calls.Add(1)) < after {
						return nil
					}
					if how == "error" {
						return stop
					}
					cancel()
					return nil
				}
				want := error(stop)
				if how == "cancel" {
					want = context.Canceled
				}
				if err := w.SelectFormats(cctx, []string{"CSV"}, fn, q); !errors.Is(err, want) {
					t.Fatalf("SelectFormats: %v, want %v", err, want)
				}
				calls.Store(0)
				cctx, cancel = context.WithCancel(ctx)
				defer cancel()
				err := w.SelectStrings(cctx, func([][]byte) error { return fn(0, nil) }, "SELECT s FROM ("+q+")")
				if !errors.Is(err, want) {
					t.Fatalf("SelectStrings: %v, want %v", err, want)
				}
				// Every connection of the pool answers after the stop.
				for range 4 {
					if n := count(t, w, "SELECT count() AS n FROM numbers(10)"); n != 10 {
						t.Fatalf("count after a stop: %d", n)
					}
				}
			})
		}
	}
}
