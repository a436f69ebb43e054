package warehouse_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/testutil/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// roundTrip inserts rows into table, reads them back with query and checks
// the result against want, row by row in order. even, when set, checks the
// fields a backend may hand back in an equal but different form (a time in
// another zone, a decimal of another scale, an empty slice for nil) and
// copies want's into got; reflect.DeepEqual then compares every field.
// It returns what it read.
func roundTrip[T any](t *testing.T, ctx context.Context, w warehouse.Warehouse, table string, cols []string, rows [][]any,
	query string, want []T, even func(t *testing.T, got *T, want T)) []T {
	t.Helper()
	if err := w.Insert(ctx, table, cols, rows); err != nil {
		t.Fatal(err)
	}
	var got []T
	if err := w.Select(ctx, &got, query); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("selected %d rows from %s, inserted %d", len(got), table, len(want))
	}
	for i := range want {
		g := got[i]
		if even != nil {
			even(t, &g, want[i])
		}
		if !reflect.DeepEqual(g, want[i]) {
			t.Fatalf("%s row %d differs:\n got %+v\nwant %+v", table, i, g, want[i])
		}
	}
	return got
}

// insertEvents stores events in the events table of w.
func insertEvents(tb testing.TB, w warehouse.Warehouse, events []chtest.Event) {
	tb.Helper()
	if err := w.Insert(context.Background(), "events", chtest.EventColumns, chtest.EventRows(events)); err != nil {
		tb.Fatal(err)
	}
}

// badQuery is a call that must fail with an error containing want.
type badQuery struct {
	name string
	run  func() error
	want string
}

// checkBadQueries runs every call, wants its error, and checks that the
// warehouse keeps serving after each failure.
func checkBadQueries(t *testing.T, ctx context.Context, w warehouse.Warehouse, tests []badQuery) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if err := w.Ping(ctx); err != nil {
				t.Fatalf("ping after failed query: %v", err)
			}
		})
	}
}

var (
	sources  = []string{"google", "newsletter", "facebook", "", "bing"}
	channels = []string{"paid_search", "email", "paid_social", "direct", "organic_search"}
)

// makeEvents builds n events for n/10 visitors, a third of them signed in,
// spread over the 60 days before base. Every value is deterministic so a
// test can recompute what a query must return. prefix keeps the event and
// visitor ids of different callers apart.
func makeEvents(prefix string, n int, base time.Time) []chtest.Event {
	events := make([]chtest.Event, n)
	for i := range events {
		visitor := i % max(n/10, 1)
		var userID *string
		if visitor%3 == 0 {
			u := fmt.Sprintf("%suser-%d", prefix, visitor)
			userID = &u
		}
		typ, value := "page_view", decimal.Zero
		if i%7 == 0 {
			typ, value = "conversion", decimal.New(int64(1999+i), -2)
		}
		t := base.Add(-time.Duration(i) * 20 * time.Minute).Add(time.Duration(i%1000) * time.Millisecond)
		events[i] = chtest.Event{
			EventID:         fmt.Sprintf("%sevt-%06d", prefix, i),
			EventTime:       t,
			ReceivedAt:      t.Add(1500 * time.Millisecond),
			EventType:       typ,
			EventName:       typ,
			UserID:          userID,
			VisitorID:       fmt.Sprintf("%svisitor-%d", prefix, visitor),
			SessionID:       fmt.Sprintf("sess-%d-%d", visitor, i/50),
			Path:            fmt.Sprintf("/pricing?plan=%d", i%4),
			LandingPage:     "/landing/" + sources[i%len(sources)],
			Referrer:        "https://www.example.com/search?q=video+ai&n=" + fmt.Sprint(i%9),
			ReferrerHost:    "www.example.com",
			Source:          sources[i%len(sources)],
			Medium:          "cpc",
			Campaign:        fmt.Sprintf("spring-%d", i%3),
			Term:            "ai video",
			Content:         "banner-a",
			Channel:         channels[i%len(channels)],
			ClickIDType:     "gclid",
			ClickID:         fmt.Sprintf("gclid-%d", i),
			Browser:         "Firefox",
			OS:              "Linux",
			DeviceClass:     "desktop",
			Screen:          "1920x1080",
			Language:        "de-DE",
			IPTruncated:     "192.0.2.0",
			ConsentPurposes: []string{"analytics", "marketing"}[:i%3],
			ConversionValue: value,
			Currency:        "EUR",
			Props:           fmt.Sprintf(`{"i":%d,"tab":"a\tb"}`, i),
		}
	}
	return events
}
