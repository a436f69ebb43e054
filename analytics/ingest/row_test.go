package ingest

import (
	"log/slog"
	"reflect"
	"testing"
	"time"
)

// TestDecodeRowsKeepsEachRow spools rows as appendRow writes them and
// decodes them as the drainer does, all in one batch: the rows share one
// string and, where equal, their purposes, and each must come back as it
// was.
func TestDecodeRowsKeepsEachRow(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 30, 15, 123_000_000, time.UTC)
	row := func(id string, purposes ...string) Row {
		return Row{EventID: id, EventTime: at, ReceivedAt: at.Add(time.Second), EventType: "page_view",
			EventName: "page_view", VisitorID: "vid_" + id, Path: "/" + id, Props: `{"id":"` + id + `"}`,
			ConversionValue: int64(len(id)), ConsentPurposes: purposes}
	}
	for _, tc := range []struct {
		name string
		rows []Row
	}{
		{name: "same purposes", rows: []Row{row("a", "analytics", "necessary"), row("b", "analytics", "necessary")}},
		{name: "purposes that change", rows: []Row{
			row("a", "analytics", "marketing", "necessary"), row("b", "analytics", "necessary", "necessary"),
			row("c", "analytics", "necessary"), row("d"), row("e", "necessary"), row("f", "necessary", "x"),
			row("g", "necessary", "x"),
		}},
		{name: "no purposes", rows: []Row{row("a"), row("b")}},
		{name: "a repeated event", rows: []Row{row("a", "necessary"), row("a", "necessary"), row("b")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var records [][]byte
			for i := range tc.rows {
				records = append(records, appendRow(nil, &tc.rows[i]))
			}
			m := &Module{log: slog.New(slog.DiscardHandler)}
			got := m.decodeRows(records, map[string]bool{})
			var want []Row
			seen := map[string]bool{}
			for _, r := range tc.rows {
				if seen[r.EventID] {
					continue
				}
				seen[r.EventID] = true
				if r.ConsentPurposes == nil {
					r.ConsentPurposes = []string{}
				}
				want = append(want, r)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}
