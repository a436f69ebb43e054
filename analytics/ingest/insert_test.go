package ingest_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/analytics/ingest"
	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/testutil/chtest"
)

// valuesOnly hides warehouse.TextInserter, so that ingest.Insert boxes
// every value for Warehouse.Insert, the path of the server backend.
type valuesOnly struct{ warehouse.Warehouse }

// TestInsertTextStoresWhatInsertStores inserts the same rows as
// TabSeparated text and through Warehouse.Insert into two tables of the
// events table's shape and checks that both store the very same rows,
// and the rows given.
func TestInsertTextStoresWhatInsertStores(t *testing.T) {
	ctx := context.Background()
	wh := chtest.Embedded(t)
	if err := wh.Exec(ctx, "CREATE TABLE events_values AS events"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 10, 30, 15, 123_000_000, time.UTC)
	for _, tc := range []struct {
		name string
		row  ingest.Row
	}{
		{name: "every field", row: ingest.Row{
			EventID: "0190a7e2-6b1c-7d3e-8f00-000000000001", EventTime: at, ReceivedAt: at.Add(time.Second),
			EventType: "purchase", EventName: "checkout", UserID: "user_1", VisitorID: "vid_0123456789abcdef",
			SessionID: "sess_abc", Path: "/pricing", LandingPage: "/landing", Referrer: "https://www.google.com/search",
			ReferrerHost: "www.google.com", Source: "newsletter", Medium: "email", Campaign: "spring", Term: "video",
			Content: "a", Channel: "Email", ClickIDType: "gclid", ClickID: "CLICK123", Browser: "Firefox 126",
			OS: "Linux", DeviceClass: "desktop", Screen: "1920x1080", Language: "de-DE", IPTruncated: "203.0.113.0",
			ConsentPurposes: []string{"analytics", "marketing", "necessary"}, ConversionValue: 199_900, Currency: "EUR",
			Props: `{"plan":"pro"}`,
		}},
		{name: "minimal", row: ingest.Row{
			EventID: "0190a7e2-6b1c-7d3e-8f00-000000000002", EventTime: at, ReceivedAt: at, EventType: "page_view",
			EventName: "page_view", Path: "/",
		}},
		{name: "text the format escapes", row: ingest.Row{
			EventID: "0190a7e2-6b1c-7d3e-8f00-000000000003", EventTime: at, ReceivedAt: at, EventType: "error",
			EventName: "tab\there", UserID: `back\slash`, Path: "/new\nline\r", Campaign: "nul\x00byte",
			Content: `it's "quoted"`, Props: `{"m":"x\\ny","q":"it's"}`, Language: "Café ☕",
			ConsentPurposes: []string{`it's`, "tab\tand\\back", ""},
		}},
		{name: "values at the edges of the scale", row: ingest.Row{
			EventID: "0190a7e2-6b1c-7d3e-8f00-000000000004", EventTime: at, ReceivedAt: at, EventType: "purchase",
			ConversionValue: 1, Currency: "USD",
		}},
		{name: "a whole number", row: ingest.Row{
			EventID: "0190a7e2-6b1c-7d3e-8f00-000000000005", EventTime: at, ReceivedAt: at, EventType: "purchase",
			ConversionValue: 10_000_000_000_000_000, Currency: "JPY",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := []ingest.Row{tc.row}
			if err := ingest.Insert(ctx, wh, "events", rows); err != nil {
				t.Fatal(err)
			}
			if err := ingest.Insert(ctx, valuesOnly{wh}, "events_values", rows); err != nil {
				t.Fatal(err)
			}
			var asText, asValues []chtest.Event
			query := "SELECT * FROM %s WHERE event_id = {id:String}"
			id := warehouse.Named("id", tc.row.EventID)
			if err := wh.Select(ctx, &asText, strings.Replace(query, "%s", "events", 1), id); err != nil {
				t.Fatal(err)
			}
			if err := wh.Select(ctx, &asValues, strings.Replace(query, "%s", "events_values", 1), id); err != nil {
				t.Fatal(err)
			}
			if len(asText) != 1 || len(asValues) != 1 {
				t.Fatalf("%d rows stored as text, %d as values, want 1 each", len(asText), len(asValues))
			}
			if !reflect.DeepEqual(asText[0], asValues[0]) {
				t.Fatalf("stored as text:\n%+v\nstored as values:\n%+v", asText[0], asValues[0])
			}
			got := storedRow(asText[0])
			want := tc.row
			if want.ConsentPurposes == nil {
				want.ConsentPurposes = []string{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("stored:\n%+v\nwant:\n%+v", got, want)
			}
		})
	}
}

// storedRow is the ingest.Row of a stored event.
func storedRow(e chtest.Event) ingest.Row {
	r := ingest.Row{
		EventID: e.EventID, EventTime: e.EventTime.UTC(), ReceivedAt: e.ReceivedAt.UTC(), EventType: e.EventType,
		EventName: e.EventName, VisitorID: e.VisitorID, SessionID: e.SessionID, Path: e.Path,
		LandingPage: e.LandingPage, Referrer: e.Referrer, ReferrerHost: e.ReferrerHost, Source: e.Source,
		Medium: e.Medium, Campaign: e.Campaign, Term: e.Term, Content: e.Content, Channel: e.Channel,
		ClickIDType: e.ClickIDType, ClickID: e.ClickID, Browser: e.Browser, OS: e.OS, DeviceClass: e.DeviceClass,
		Screen: e.Screen, Language: e.Language, IPTruncated: e.IPTruncated, ConsentPurposes: e.ConsentPurposes,
		ConversionValue: e.ConversionValue.Shift(4).IntPart(), Currency: e.Currency, Props: e.Props,
	}
	if e.UserID != nil {
		r.UserID = *e.UserID
	}
	return r
}
