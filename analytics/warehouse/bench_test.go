package warehouse_test

import (
	"context"
	"testing"

	"github.com/stewardhq/steward/internal/testutil/chtest"
)

// BenchmarkEmbeddedInsert measures ingestion into the events table in the
// batch size the ingest path uses, 10k rows; rows/s is the number to watch.
func BenchmarkEmbeddedInsert(b *testing.B) {
	ctx := context.Background()
	w := chtest.Embedded(b)
	const batch = 10_000
	rows := chtest.EventRows(makeEvents("bench-", batch, testBase))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := w.Insert(ctx, "events", chtest.EventColumns, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkEmbeddedGroupBy measures an attribution-style aggregation over
// 200k events. The events are inserted once per process, by the
// benchmark itself, and the query is measured in a sub-benchmark: with
// -count=5 only the sub-benchmark runs again, and the insert is not
// repeated five times.
func BenchmarkEmbeddedGroupBy(b *testing.B) {
	ctx := context.Background()
	w := chtest.Embedded(b)
	const total, batch = 200_000, 10_000
	for i := 0; i < total; i += batch {
		events := makeEvents("gb-"+string(rune('a'+i/batch))+"-", batch, testBase)
		insertEvents(b, w, events)
	}
	type row struct {
		Source      string `ch:"source"`
		Channel     string `ch:"channel"`
		Visitors    uint64 `ch:"visitors"`
		Conversions uint64 `ch:"conversions"`
	}
	b.Run("rows=200k", func(b *testing.B) {
		for b.Loop() {
			var rows []row
			err := w.Select(ctx, &rows, `
				SELECT source, channel, uniq(visitor_id) AS visitors, countIf(event_type = 'conversion') AS conversions
				FROM events
				GROUP BY source, channel
				ORDER BY conversions DESC`)
			if err != nil {
				b.Fatal(err)
			}
			if len(rows) == 0 {
				b.Fatal("no groups")
			}
		}
		b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
