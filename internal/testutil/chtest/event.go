package chtest

import (
	"time"

	"github.com/shopspring/decimal"
)

// Event is one row of the events table as the analytics code stores and
// reads it. Tests select into it ("SELECT * FROM events") and insert it
// with EventColumns and Values.
type Event struct {
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

// EventColumns lists the columns of the events table in the order of
// Event.Values.
var EventColumns = []string{
	"event_id", "event_time", "received_at", "event_type", "event_name", "user_id", "visitor_id",
	"session_id", "path", "landing_page", "referrer", "referrer_host", "source", "medium", "campaign",
	"term", "content", "channel", "click_id_type", "click_id", "browser", "os", "device_class",
	"screen", "language", "ip_truncated", "consent_purposes", "conversion_value", "currency", "props",
}

// Values returns the row's values in the order of EventColumns.
func (e Event) Values() []any {
	return []any{
		e.EventID, e.EventTime, e.ReceivedAt, e.EventType, e.EventName, e.UserID, e.VisitorID,
		e.SessionID, e.Path, e.LandingPage, e.Referrer, e.ReferrerHost, e.Source, e.Medium, e.Campaign,
		e.Term, e.Content, e.Channel, e.ClickIDType, e.ClickID, e.Browser, e.OS, e.DeviceClass,
		e.Screen, e.Language, e.IPTruncated, e.ConsentPurposes, e.ConversionValue, e.Currency, e.Props,
	}
}

// EventRows returns the values of every event, ready for an insert with
// EventColumns.
func EventRows(events []Event) [][]any {
	rows := make([][]any, len(events))
	for i, e := range events {
		rows[i] = e.Values()
	}
	return rows
}
