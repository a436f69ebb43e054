package warehouse_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/stewardhq/steward/internal/testutil/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// event is one row of the events table as the analytics code reads it.
type event struct {
	EventID         string          `ch:"event_id"`
	EventTime       time.Time       `ch:"event_time"`
	ReceivedAt      time.Time       `ch:"received_at"`
	EventType       string          `ch:"event_type"`
	EventName       string          `ch:"event_name"`
	UserID          *string         `ch:"user_id"`
	VisitorID       string          `ch:"visitor_id"`
	SessionID       string          `ch:"session_id"`
	Path            string          `ch:"path"`
	LandingPage     string          `ch:"landing_page"`
	Referrer        string          `ch:"referrer"`
	ReferrerHost    string          `ch:"referrer_host"`
	Source          string          `ch:"source"`
	Medium          string          `ch:"medium"`
	Campaign        string          `ch:"campaign"`
	Term            string          `ch:"term"`
	Content         string          `ch:"content"`
	Channel         string          `ch:"channel"`
	ClickIDType     string          `ch:"click_id_type"`
	ClickID         string          `ch:"click_id"`
	Browser         string          `ch:"browser"`
	OS              string          `ch:"os"`
	DeviceClass     string          `ch:"device_class"`
	Screen          string          `ch:"screen"`
	Language        string          `ch:"language"`
	IPTruncated     string          `ch:"ip_truncated"`
	ConsentPurposes []string        `ch:"consent_purposes"`
	ConversionValue decimal.Decimal `ch:"conversion_value"`
	Currency        string          `ch:"currency"`
	Props           string          `ch:"props"`
}

var eventColumns = []string{
	"event_id", "event_time", "received_at", "event_type", "event_name", "user_id", "visitor_id",
	"session_id", "path", "landing_page", "referrer", "referrer_host", "source", "medium", "campaign",
	"term", "content", "channel", "click_id_type", "click_id", "browser", "os", "device_class",
	"screen", "language", "ip_truncated", "consent_purposes", "conversion_value", "currency", "props",
}

func (e event) row() []any {
	return []any{
		e.EventID, e.EventTime, e.ReceivedAt, e.EventType, e.EventName, e.UserID, e.VisitorID,
		e.SessionID, e.Path, e.LandingPage, e.Referrer, e.ReferrerHost, e.Source, e.Medium, e.Campaign,
		e.Term, e.Content, e.Channel, e.ClickIDType, e.ClickID, e.Browser, e.OS, e.DeviceClass,
		e.Screen, e.Language, e.IPTruncated, e.ConsentPurposes, e.ConversionValue, e.Currency, e.Props,
	}
}

func rowsOf(events []event) [][]any {
	rows := make([][]any, len(events))
	for i, e := range events {
		rows[i] = e.row()
	}
	return rows
}

var (
	sources  = []string{"google", "newsletter", "facebook", "", "bing"}
	channels = []string{"paid_search", "email", "paid_social", "direct", "organic_search"}
)

// makeEvents builds n events for n/10 visitors, a third of them signed in,
// spread over the 60 days before base. Every value is deterministic so a
// test can recompute what a query must return. prefix keeps the event and
// visitor ids of different callers apart.
func makeEvents(prefix string, n int, base time.Time) []event {
	events := make([]event, n)
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
		events[i] = event{
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
